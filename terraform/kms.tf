# One customer-managed key for the bucket, exports, logs, the topic, the Slack webhook's
# secret and the functions' environment, unless the caller brings its own (kms_key_id).

# Resolves the given id or alias to the key ARN (IAM, Lambda and log groups need the ARN).
# The caller may create the key in the same apply: depending on a resource of this module
# puts the first read off until apply, when the key exists.
data "aws_kms_key" "given" {
  count  = local.create_kms_key ? 0 : 1
  key_id = var.kms_key_id

  depends_on = [aws_iam_role.export]
}

locals {
  # Decided by the caller's switch when the key's id is known only after apply.
  create_kms_key = var.create_kms_key != null ? var.create_kms_key : var.kms_key_id == null
  # The module's key, protected from deletion (backup) or not (deletable): lifecycle
  # arguments take no variables, so the switch picks one of two resources.
  module_kms_key = one(concat(aws_kms_key.backup, aws_kms_key.deletable))
  kms_key_arn    = local.create_kms_key ? local.module_kms_key.arn : data.aws_kms_key.given[0].arn
  kms_key_id     = local.create_kms_key ? local.module_kms_key.key_id : data.aws_kms_key.given[0].id
  kms_key_settings = {
    description             = "${local.prefix} database backups: S3 exports, logs, notifications, function environment"
    enable_key_rotation     = true
    deletion_window_in_days = 30
  }
}

# Every export, log and secret of the module is encrypted with this key: deleting it makes
# them unreadable once its deletion window ends. Terraform refuses any plan that would
# delete it (destroy, create_kms_key = false, kms_key_id); docs/operations.md says how to
# retire or replace it deliberately.
resource "aws_kms_key" "backup" {
  count = local.create_kms_key && var.kms_key_deletion_protection ? 1 : 0

  description             = local.kms_key_settings.description
  enable_key_rotation     = local.kms_key_settings.enable_key_rotation
  deletion_window_in_days = local.kms_key_settings.deletion_window_in_days
  policy                  = data.aws_iam_policy_document.kms[0].json
  tags                    = local.tags

  lifecycle {
    prevent_destroy = true
  }
}

# kms_key_deletion_protection = false: for stacks whose backups may go (demos, tests).
resource "aws_kms_key" "deletable" {
  count = local.create_kms_key && !var.kms_key_deletion_protection ? 1 : 0

  description             = local.kms_key_settings.description
  enable_key_rotation     = local.kms_key_settings.enable_key_rotation
  deletion_window_in_days = local.kms_key_settings.deletion_window_in_days
  policy                  = data.aws_iam_policy_document.kms[0].json
  tags                    = local.tags
}

resource "aws_kms_alias" "backup" {
  count = local.create_kms_key ? 1 : 0

  name          = "alias/${local.prefix}-database-backup"
  target_key_id = local.kms_key_id
}

data "aws_iam_policy_document" "kms" {
  # checkov:skip=CKV_AWS_109: a key policy's resource is always the key itself ("*"); administration stays with the account
  # checkov:skip=CKV_AWS_111: kms:* for the account root is the standard key policy; IAM policies then decide
  # checkov:skip=CKV_AWS_356: a key policy can only name the key itself ("*")
  count = local.create_kms_key ? 1 : 0

  # Key administration stays with the account (IAM policies decide who administers it).
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }

  # RDS writes exports and S3 stores them under this key on behalf of the export role.
  statement {
    sid = "RdsAndS3ThroughTheBackupRoles"
    actions = [
      "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey",
      "kms:CreateGrant", "kms:RetireGrant",
    ]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.export.arn, aws_iam_role.function["export"].arn]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["rds.${local.region}.amazonaws.com", "s3.${local.region}.amazonaws.com"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncryptsTheModuleLogGroups"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account}:log-group:*${local.prefix}*"]
    }
  }

  # SNS decrypts for delivery; CloudWatch alarms publish to the encrypted topic.
  statement {
    sid       = "SnsAndAlarmsUseTheTopicKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com", "cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }

  # The notify function publishes to the encrypted topic.
  statement {
    sid       = "NotifyPublishesToTheTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.function["notify"].arn]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sns.${local.region}.amazonaws.com"]
    }
  }

  # Notify reads the Slack webhook's secret (slack.tf).
  statement {
    sid       = "NotifyReadsTheSlackWebhook"
    actions   = ["kms:Decrypt"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [aws_iam_role.function["notify"].arn]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }

  # Each function reads its own KMS-encrypted environment.
  statement {
    sid       = "FunctionsDecryptTheirEnvironment"
    actions   = ["kms:Decrypt"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = [for role in aws_iam_role.function : role.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["lambda.${local.region}.amazonaws.com"]
    }
  }
}
