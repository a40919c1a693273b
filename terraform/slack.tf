# The Slack webhook URL grants anyone who holds it posting to the channel: it is kept in a
# Secrets Manager secret under the module's key, not in notify's environment, where
# lambda:GetFunctionConfiguration would show it. Notify reads it at cold start; only its
# role may (iam.tf), and only through Secrets Manager (kms.tf).

resource "aws_secretsmanager_secret" "slack_webhook" {
  # checkov:skip=CKV2_AWS_57: Slack issues the webhook; rotating it means a new URL in slack_webhook_url, which updates this secret
  count = var.slack_webhook_url == null ? 0 : 1

  name        = "${local.prefix}-slack-webhook-url"
  description = "The Slack incoming-webhook URL ${local.prefix} database backups post their summaries to"
  kms_key_id  = local.kms_key_arn
  # The value lives in the caller's configuration: nothing is lost by deleting it at once, and
  # a destroy followed by an apply can create the same name again (a recovery window blocks it).
  recovery_window_in_days = 0
  tags                    = local.tags
}

resource "aws_secretsmanager_secret_version" "slack_webhook" {
  count = var.slack_webhook_url == null ? 0 : 1

  secret_id     = aws_secretsmanager_secret.slack_webhook[0].id
  secret_string = var.slack_webhook_url
}

locals {
  slack_webhook_secret_arn = var.slack_webhook_url == null ? null : aws_secretsmanager_secret.slack_webhook[0].arn
  # Notify reads the version written here: a new URL is a new version, and so new environments.
  slack_webhook_environment = var.slack_webhook_url == null ? {} : {
    SLACK_WEBHOOK_SECRET_ARN     = local.slack_webhook_secret_arn
    SLACK_WEBHOOK_SECRET_VERSION = aws_secretsmanager_secret_version.slack_webhook[0].version_id
  }
}
