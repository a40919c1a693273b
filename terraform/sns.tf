# The topic of the run summaries and the alarms: the caller's (sns_topic_arn) or the module's own.

locals {
  own_topic_name = "${local.prefix}-database-backup"
  # The module's own topic's ARN from its name (as the functions' ARNs), so that the plan
  # shows the notify function's whole environment; what needs the topic to exist depends on it.
  # Decided by the caller's switch when the topic's ARN is known only after apply.
  create_sns_topic = var.create_sns_topic != null ? var.create_sns_topic : var.sns_topic_arn == null
  sns_topic_arn    = local.create_sns_topic ? "arn:${local.partition}:sns:${local.region}:${local.account}:${local.own_topic_name}" : var.sns_topic_arn
  sns_topic_name   = element(split(":", local.sns_topic_arn), 5)
}

resource "aws_sns_topic" "notifications" {
  count = local.create_sns_topic ? 1 : 0

  name              = local.own_topic_name
  display_name      = "${local.prefix} database backup"
  kms_master_key_id = local.kms_key_arn
  tags              = local.tags
}

resource "aws_sns_topic_policy" "notifications" {
  count = local.create_sns_topic ? 1 : 0

  arn    = aws_sns_topic.notifications[0].arn
  policy = data.aws_iam_policy_document.notifications[0].json
}

data "aws_iam_policy_document" "notifications" {
  count = local.create_sns_topic ? 1 : 0

  statement {
    sid       = "AccountManagesTheTopic"
    actions   = ["SNS:GetTopicAttributes", "SNS:SetTopicAttributes", "SNS:Subscribe", "SNS:ListSubscriptionsByTopic", "SNS:Publish"]
    resources = [aws_sns_topic.notifications[0].arn]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }

  statement {
    sid       = "AlarmsOfThisAccountPublish"
    actions   = ["SNS:Publish"]
    resources = [aws_sns_topic.notifications[0].arn]
    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["SNS:Publish"]
    resources = [aws_sns_topic.notifications[0].arn]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sns_topic_subscription" "email" {
  count = var.notification_email == null ? 0 : 1

  topic_arn = local.sns_topic_arn
  protocol  = "email"
  endpoint  = var.notification_email

  depends_on = [aws_sns_topic.notifications]
}
