# Stands in for an organisation's security baseline: a customer-managed key that the
# backup module can use (see "Bring your own KMS key" in docs/operations.md for what it must allow).

variable "name" {
  description = "Prefix of the key alias."
  type        = string
}

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}

data "aws_iam_policy_document" "key" {
  # checkov:skip=CKV_AWS_109: a key policy's resource is always the key itself ("*"); administration stays with the account
  # checkov:skip=CKV_AWS_111: kms:* for the account root is the standard key policy; IAM policies then decide
  # checkov:skip=CKV_AWS_356: a key policy can only name the key itself ("*")
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:aws:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }

  statement {
    sid       = "CloudWatchLogsEncryptsLogGroups"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${data.aws_region.current.id}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:aws:logs:${data.aws_region.current.id}:${data.aws_caller_identity.current.account_id}:log-group:*"]
    }
  }

  statement {
    sid       = "SnsAndAlarmsUseTheKey"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com", "cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [data.aws_caller_identity.current.account_id]
    }
  }
}

resource "aws_kms_key" "this" {
  description         = "${var.name} security baseline"
  enable_key_rotation = true
  policy              = data.aws_iam_policy_document.key.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.name}-baseline"
  target_key_id = aws_kms_key.this.key_id
}

# The alias name is known when planning, so a module that counts on "was a key given?"
# can plan before the key exists.
output "kms_key_id" {
  description = "Key alias name (usable wherever a key id is)"
  value       = aws_kms_alias.this.name
}

output "kms_key_arn" {
  description = "Key ARN"
  value       = aws_kms_key.this.arn
}
