# The source side of the vault (variable vault): a key the vault account may use, with which
# the vault function copies a snapshot before sharing it (a snapshot encrypted with aws/rds
# cannot be shared), and what the function's role may do. The vault side (the vault's key and
# the role the function assumes) is modules/vault, applied with a provider for the vault
# account.

locals {
  vault_region = var.vault == null ? null : coalesce(var.vault.region, local.region)
  vault_environment = var.vault == null ? {} : merge({
    VAULT_ACCOUNT_ID        = var.vault.account_id
    VAULT_REGION            = local.vault_region
    VAULT_ROLE_ARN          = var.vault.role_arn
    VAULT_KMS_KEY_ARN       = var.vault.kms_key_arn
    VAULT_SHARE_KMS_KEY_ARN = aws_kms_key.vault_share[0].arn
  }, var.vault.external_id == null ? {} : { VAULT_EXTERNAL_ID = var.vault.external_id })
}

# Only ever encrypts the short-lived copies made to share: the vault's copies are under the
# vault's key, and deleting this one loses nothing the vault holds.
# Aurora cannot copy a cluster snapshot to another region and account in one step (Aurora User
# Guide, Copying a DB cluster snapshot), and the two-step copy is not built: the vault step of
# each cluster then fails, named (VaultCopyRefused). Said at plan, not refused: the instances go.
check "vault_region_takes_the_clusters" {
  assert {
    condition     = var.vault == null || local.vault_region == local.region || length(var.rds_cluster_ids) == 0
    error_message = "vault.region ${coalesce(local.vault_region, "-")} is not ${local.region}: the clusters ${join(", ", var.rds_cluster_ids)} are not copied into the vault (a DB cluster snapshot cannot cross regions and accounts in one copy; their vault step fails with VaultCopyRefused). Put the vault in ${local.region} to vault them."
  }
}

resource "aws_kms_key" "vault_share" {
  count = var.vault == null ? 0 : 1

  description             = "${local.prefix} database backups: snapshots shared with the vault account ${var.vault.account_id}"
  enable_key_rotation     = true
  deletion_window_in_days = 30
  policy                  = data.aws_iam_policy_document.vault_share_key[0].json
  tags                    = local.tags

  lifecycle {
    precondition {
      condition     = var.vault.account_id != local.account
      error_message = "vault.account_id ${var.vault.account_id} is this account: a vault must be another account, or a mistake here can delete both."
    }
  }
}

resource "aws_kms_alias" "vault_share" {
  count = var.vault == null ? 0 : 1

  name          = "alias/${local.prefix}-vault-share"
  target_key_id = aws_kms_key.vault_share[0].key_id
}

# What the vault account needs of the key of a snapshot shared with it, to copy it: RDS creates
# a grant on the key and decrypts with it (RDS User Guide, "Sharing encrypted snapshots": "add
# the ARN of the AWS account that you are sharing to as Principal in the KMS key policy. Then
# allow the kms:CreateGrant action"), only through RDS (kms:ViaService), and grants only for
# RDS's own use (kms:GrantIsForAWSResource). The vault function checks this policy at each
# run's start (kms:GetKeyPolicy) and names what is missing.
data "aws_iam_policy_document" "vault_share_key" {
  # checkov:skip=CKV_AWS_109: a key policy's resource is always the key itself ("*"); administration stays with the account
  # checkov:skip=CKV_AWS_111: kms:* for the account root is the standard key policy; IAM policies then decide
  # checkov:skip=CKV_AWS_356: a key policy can only name the key itself ("*")
  count = var.vault == null ? 0 : 1

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
      identifiers = ["arn:${local.partition}:iam::${var.vault.account_id}:root"]
    }
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = distinct(["rds.${local.region}.amazonaws.com", "rds.${local.vault_region}.amazonaws.com"])
    }
  }

  statement {
    sid       = "VaultAccountLetsRdsHoldGrants"
    actions   = ["kms:CreateGrant"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${var.vault.account_id}:root"]
    }
    condition {
      test     = "Bool"
      variable = "kms:GrantIsForAWSResource"
      values   = ["true"]
    }
  }
}

data "aws_iam_policy_document" "vault" {
  # The database's snapshot and the copy made with the module's key (<snapshot>-vault): read,
  # copied, shared with the vault account and unshared.
  dynamic "statement" {
    for_each = var.vault != null && length(local.database_ids) > 0 ? [1] : []
    content {
      sid = "ShareOwnSnapshotsWithTheVault"
      actions = [
        "rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots", "rds:CopyDBSnapshot", "rds:CopyDBClusterSnapshot",
        "rds:AddTagsToResource", "rds:ModifyDBSnapshotAttribute", "rds:ModifyDBClusterSnapshotAttribute",
      ]
      resources = local.own_snapshot_arns[local.region]
    }
  }

  # Selected databases' snapshots: shared or copied only when they carry this instance's
  # managed-by tag, into copies to share created with its vault-intermediate tag.
  dynamic "statement" {
    for_each = var.vault != null && local.selects_by_criteria ? [1] : []
    content {
      sid       = "ShareSnapshotsOfSelectedDatabasesCarryingOwnTag"
      actions   = ["rds:CopyDBSnapshot", "rds:CopyDBClusterSnapshot", "rds:ModifyDBSnapshotAttribute", "rds:ModifyDBClusterSnapshotAttribute"]
      resources = local.any_snapshot_arns[local.region]
      condition {
        test     = "StringEquals"
        variable = "aws:ResourceTag/database-backup:managed-by"
        values   = [local.backup_instance]
      }
    }
  }

  dynamic "statement" {
    for_each = var.vault != null && local.selects_by_criteria ? [1] : []
    content {
      sid       = "CreateCopiesToShareOfSelectedDatabasesWithOwnTag"
      actions   = ["rds:CopyDBSnapshot", "rds:CopyDBClusterSnapshot", "rds:AddTagsToResource"]
      resources = ["${local.rds_arn}:${local.region}:${local.account}:*snapshot:*-vault"]
      condition {
        test     = "StringEquals"
        variable = "aws:RequestTag/database-backup:vault-intermediate"
        values   = [local.backup_instance]
      }
    }
  }

  dynamic "statement" {
    for_each = var.vault != null && local.selects_by_criteria ? [1] : []
    content {
      sid       = "FindSnapshotsOfSelectedDatabases"
      actions   = ["rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots"]
      resources = local.any_snapshot_arns[local.region]
    }
  }

  # The copies made to share, of any database (one taken out of the module since, too): shared,
  # unshared and deleted only with this instance's vault-intermediate tag. Nothing else is
  # ever deleted.
  dynamic "statement" {
    for_each = var.vault == null ? [] : [1]
    content {
      sid = "UnshareAndDeleteOwnCopiesMadeToShare"
      actions = [
        "rds:ModifyDBSnapshotAttribute", "rds:ModifyDBClusterSnapshotAttribute", "rds:DeleteDBSnapshot", "rds:DeleteDBClusterSnapshot",
      ]
      resources = ["${local.rds_arn}:${local.region}:${local.account}:*snapshot:*-vault"]
      condition {
        test     = "StringEquals"
        variable = "aws:ResourceTag/database-backup:vault-intermediate"
        values   = [local.backup_instance]
      }
    }
  }

  # The run's check lists the region's snapshots for copies made to share that earlier runs'
  # vault steps left behind (a listing names no one snapshot).
  dynamic "statement" {
    for_each = var.vault == null ? [] : [1]
    content {
      sid       = "FindCopiesLeftBehind"
      actions   = ["rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots"]
      resources = [local.rds_in_source_region]
    }
  }

  # An Oracle or SQL Server snapshot with persistent options (TDE) cannot be shared: the
  # function reads its option group to say so before copying anything.
  dynamic "statement" {
    for_each = var.vault == null ? [] : [1]
    content {
      sid       = "ReadSourceOptionGroups"
      actions   = ["rds:DescribeOptionGroups"]
      resources = ["${local.rds_arn}:${local.region}:${local.account}:og:*"]
    }
  }

  dynamic "statement" {
    for_each = var.vault == null ? [] : [1]
    content {
      sid       = "AssumeTheVaultRole"
      actions   = ["sts:AssumeRole"]
      resources = [var.vault.role_arn]
    }
  }

  # The run's check reads the key and its policy; the copy with it goes through RDS.
  dynamic "statement" {
    for_each = var.vault == null ? [] : [1]
    content {
      sid       = "CheckTheShareKey"
      actions   = ["kms:DescribeKey", "kms:GetKeyPolicy"]
      resources = [aws_kms_key.vault_share[0].arn]
    }
  }

  dynamic "statement" {
    for_each = var.vault == null ? [] : [1]
    content {
      sid       = "LetRdsEncryptWithTheShareKey"
      actions   = ["kms:CreateGrant", "kms:DescribeKey"]
      resources = ["arn:${local.partition}:kms:${local.region}:${local.account}:key/*"]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["rds.${local.region}.amazonaws.com"]
      }
    }
  }
}
