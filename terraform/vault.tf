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
    VAULT_SHARE_KMS_KEY_ARN = module.vault_share_key[0].key_arn
    },
    var.vault.external_id == null ? {} : { VAULT_EXTERNAL_ID = var.vault.external_id },
    local.cluster_share_key == null ? {} : { VAULT_CLUSTER_SHARE_KMS_KEY_ARN = local.cluster_share_key },
  )
  # The key of this account in the vault's region with which cluster snapshots are copied
  # there to be shared (a vault in another region, with clusters to vault).
  cluster_share_key = try(var.vault.cluster_share_kms_key_arn, null)
  cluster_copies_to_share_in_vault_region = local.cluster_share_key == null ? [] : [
    "${local.rds_arn}:${local.vault_region}:${local.account}:cluster-snapshot:*-vault",
  ]
  # Where RDS uses keys of this account for the vault function's copies: here (the snapshots'
  # keys and the share key), and the vault's region (the key there only).
  share_regions = local.cluster_share_key == null ? [local.region] : [local.region, local.vault_region]
}

# Aurora cannot copy a cluster snapshot to another region and account in one step (Aurora User
# Guide, Copying a DB cluster snapshot): for a vault in another region, the vault function copies
# it there first, with a key of this account there (vault.cluster_share_kms_key_arn, which
# modules/share-key makes), then shares that copy. Without that key, the vault step of each
# cluster fails, named (VaultCopyRefused). Said at plan, not refused: the instances go.
check "vault_region_takes_the_clusters" {
  assert {
    condition     = var.vault == null || local.vault_region == local.region || length(var.rds_cluster_ids) == 0 || try(var.vault.cluster_share_kms_key_arn != null, false)
    error_message = "vault.region ${coalesce(local.vault_region, "-")} is not ${local.region} and vault.cluster_share_kms_key_arn is not set: the clusters ${join(", ", var.rds_cluster_ids)} are not copied into the vault (a DB cluster snapshot cannot cross regions and accounts in one copy: it is copied into ${coalesce(local.vault_region, "-")} first with a key of this account there; their vault step fails with VaultCopyRefused). Apply modules/share-key with a provider for this account in ${coalesce(local.vault_region, "-")} and give its key_arn as vault.cluster_share_kms_key_arn, or put the vault in ${local.region}."
  }
}

# The key the vault function copies a snapshot with before sharing it (docs/vault.md has who
# may use it and why).
module "vault_share_key" {
  source = "./modules/share-key"
  count  = var.vault == null ? 0 : 1

  vault_account_id    = var.vault.account_id
  alias_name          = "${local.prefix}-vault-share"
  description         = "${local.prefix} database backups: snapshots shared with the vault account ${var.vault.account_id}"
  copied_into_regions = [local.vault_region]
  tags                = local.tags
}

moved {
  from = aws_kms_key.vault_share[0]
  to   = module.vault_share_key[0].aws_kms_key.this
}

moved {
  from = aws_kms_alias.vault_share[0]
  to   = module.vault_share_key[0].aws_kms_alias.this
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
      resources = concat(
        ["${local.rds_arn}:${local.region}:${local.account}:*snapshot:*-vault"],
        local.cluster_copies_to_share_in_vault_region,
      )
      condition {
        test     = "StringEquals"
        variable = "aws:ResourceTag/database-backup:vault-intermediate"
        values   = [local.backup_instance]
      }
    }
  }

  # Cluster snapshots for a vault in another region: copied there (from the source region's
  # snapshots, which the statements above let it copy) into copies made to share, created only
  # with this instance's vault-intermediate tag, then shared, unshared and deleted as above.
  dynamic "statement" {
    for_each = local.cluster_share_key == null ? [] : [1]
    content {
      sid       = "CreateClusterCopiesToShareInTheVaultRegionWithOwnTag"
      actions   = ["rds:CopyDBClusterSnapshot", "rds:AddTagsToResource"]
      resources = local.cluster_copies_to_share_in_vault_region
      condition {
        test     = "StringEquals"
        variable = "aws:RequestTag/database-backup:vault-intermediate"
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
      resources = local.cluster_share_key == null ? [local.rds_in_source_region] : [local.rds_in_source_region, "${local.rds_arn}:${local.vault_region}:${local.account}:*"]
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
      resources = compact([module.vault_share_key[0].key_arn, local.cluster_share_key])
    }
  }

  dynamic "statement" {
    for_each = var.vault == null ? [] : [1]
    content {
      sid       = "LetRdsEncryptWithTheShareKey"
      actions   = ["kms:CreateGrant", "kms:DescribeKey"]
      resources = compact(["arn:${local.partition}:kms:${local.region}:${local.account}:key/*", local.cluster_share_key])
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = [for region in local.share_regions : "rds.${region}.amazonaws.com"]
      }
    }
  }
}
