# A key of the source account that the vault account may use to copy the snapshots shared with
# it, encrypted with this key: a snapshot under the AWS managed key aws/rds cannot be shared
# ("You can't share a snapshot that has been encrypted using the default KMS key of the AWS
# account that shared the snapshot", RDS User Guide, Sharing encrypted snapshots). The source
# module makes one in its own region; a vault in another region that takes Aurora clusters
# needs one there too (a DB cluster snapshot cannot cross regions and accounts in one copy: it
# is copied into the vault's region with this key first), applied with a provider for the
# source account in the vault's region. It only ever encrypts the short-lived copies made to
# share: the vault's copies are under the vault's key, and deleting this one loses nothing the
# vault holds.

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  partition = data.aws_partition.current.partition
  # RDS uses the key on the vault account's behalf where it copies: in this region, and in
  # the vault's when a snapshot is copied across regions and accounts in one step.
  # (amazonaws.com.cn in the China regions: kms:ViaService names the service's endpoint.)
  rds_services = [for region in distinct(concat([data.aws_region.current.id], var.copied_into_regions)) : "rds.${region}.${data.aws_partition.current.dns_suffix}"]
}

resource "aws_kms_key" "this" {
  description             = var.description
  enable_key_rotation     = true
  deletion_window_in_days = var.deletion_window_in_days
  policy                  = data.aws_iam_policy_document.this.json
  tags                    = var.tags

  lifecycle {
    precondition {
      condition     = var.vault_account_id != local.account
      error_message = "vault_account_id ${var.vault_account_id} is this account: a vault must be another account, or a mistake here can delete both."
    }
  }
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.alias_name}"
  target_key_id = aws_kms_key.this.key_id
}

# What the vault account needs of the key of a snapshot shared with it, to copy it: RDS creates
# a grant on the key and decrypts with it (RDS User Guide, "Sharing encrypted snapshots": "add
# the ARN of the AWS account that you are sharing to as Principal in the KMS key policy. Then
# allow the kms:CreateGrant action"), only through RDS (kms:ViaService), and grants only for
# RDS's own use (kms:GrantIsForAWSResource). The vault function checks this policy at each
# run's start (kms:GetKeyPolicy) and names what is missing.
data "aws_iam_policy_document" "this" {
  # checkov:skip=CKV_AWS_109: a key policy's resource is always the key itself ("*"); administration stays with the account
  # checkov:skip=CKV_AWS_111: kms:* for the account root is the standard key policy; IAM policies then decide
  # checkov:skip=CKV_AWS_356: a key policy can only name the key itself ("*")
  statement {
    sid       = "AccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }

  statement {
    sid       = "VaultAccountCopiesThroughRds"
    actions   = ["kms:Decrypt", "kms:DescribeKey"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${var.vault_account_id}:root"]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = local.rds_services
    }
  }

  statement {
    sid       = "VaultAccountLetsRdsHoldGrants"
    actions   = ["kms:CreateGrant"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${var.vault_account_id}:root"]
    }
    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }
}
