# The vault side of database-backup: applied with a provider for the vault account, a separate
# account that keeps a copy of every snapshot out of reach of the source account. It holds the
# vault's key, with which every copy is encrypted, and the one role the source's vault function
# may assume: it may copy the snapshots the source shares into the vault and tag them, and
# nothing else. RDS has no resource-based policies ("Supports resource-based policies: No",
# RDS User Guide, "How Amazon RDS works with IAM"), so a principal of the source account can
# reach a vault snapshot only through a role of the vault account: this role, whose policy
# denies every deletion, unsharing, restore and key change explicitly ("an explicit deny in
# any of these policies overrides the allow", IAM User Guide, "Policy evaluation logic").

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.id
  partition = data.aws_partition.current.partition
  # kms:ViaService names the service's endpoint: amazonaws.com.cn in the China regions.
  dns_suffix = data.aws_partition.current.dns_suffix
  rds_arn    = "arn:${local.partition}:rds"
  # The vault's copies, and the source's snapshots shared with the vault: in the source region,
  # and for a vault in another region the source's copies of cluster snapshots made there to
  # share (a DB cluster snapshot cannot cross regions and accounts in one copy).
  vault_snapshot_arns = ["${local.rds_arn}:${local.region}:${local.account}:snapshot:*", "${local.rds_arn}:${local.region}:${local.account}:cluster-snapshot:*"]
  source_snapshot_arns = distinct([
    "${local.rds_arn}:${var.source_region}:${var.source_account_id}:snapshot:*",
    "${local.rds_arn}:${var.source_region}:${var.source_account_id}:cluster-snapshot:*",
    "${local.rds_arn}:${local.region}:${var.source_account_id}:cluster-snapshot:*",
  ])
  # The source's keys of the snapshots it shares: in its region, and in the vault's (modules/share-key there).
  source_key_arns = distinct([for region in [var.source_region, local.region] : "arn:${local.partition}:kms:${region}:${var.source_account_id}:key/*"])
  rds_services    = distinct(["rds.${local.region}.${local.dns_suffix}", "rds.${var.source_region}.${local.dns_suffix}"])
}

resource "aws_kms_key" "vault" {
  description             = "${var.name} database backups: the vault's copies, from account ${var.source_account_id}"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_key_deletion_window_days
  policy                  = data.aws_iam_policy_document.administered_by_the_vault_account.json
  tags                    = var.tags

  lifecycle {
    precondition {
      condition     = local.account != var.source_account_id
      error_message = "The vault's provider is for account ${local.account}, the source account itself: a vault must be another account, or a mistake in the source account can delete both."
    }
  }
}

resource "aws_kms_alias" "vault" {
  name          = "alias/${var.name}-database-backup-vault"
  target_key_id = aws_kms_key.vault.key_id
}

# The vault account administers its keys (the vault key's whole policy: the copier role uses
# it through its IAM policy; retention.tf's operations key adds the services that use it).
data "aws_iam_policy_document" "administered_by_the_vault_account" {
  # checkov:skip=CKV_AWS_109: a key policy's resource is always the key itself ("*"); administration stays with the vault account
  # checkov:skip=CKV_AWS_111: kms:* for the account root is the standard key policy; IAM policies then decide
  # checkov:skip=CKV_AWS_356: a key policy can only name the key itself ("*")
  statement {
    sid       = "VaultAccountAdministers"
    actions   = ["kms:*"]
    resources = ["*"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${local.account}:root"]
    }
  }

}

# Each of the vault's roles trusts one function role of the source: the copier its vault
# function's, the drill role (drill.tf) its drill function's (aws:PrincipalArn: for a role's
# session, the role's ARN, IAM User Guide, "AWS global condition context keys"), with the
# external id when one is set. The role's name is matched (<prefix>-<six hex digits of the
# instance>-<function>, under any iam_role_name_prefix and path), not its ARN taken from the
# source module: the source module takes this module's outputs, so it cannot also give it one
# of its own.
locals {
  trusted_source_functions = merge({ copier = "vault" }, var.allow_restore_drills ? { drill = "drill" } : {})
}

data "aws_iam_policy_document" "trust" {
  for_each = local.trusted_source_functions

  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "AWS"
      identifiers = ["arn:${local.partition}:iam::${var.source_account_id}:root"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:PrincipalArn"
      values   = ["arn:${local.partition}:iam::${var.source_account_id}:role/*${var.source_prefix}-??????-${each.value}"]
    }
    dynamic "condition" {
      for_each = var.external_id == null ? [] : [var.external_id]
      content {
        test     = "StringEquals"
        variable = "sts:ExternalId"
        values   = [condition.value]
      }
    }
  }
}

resource "aws_iam_role" "copier" {
  name                 = "${var.name}-vault-copier"
  description          = "database-backup: the source account ${var.source_account_id} copies its snapshots into this vault, and nothing else"
  assume_role_policy   = data.aws_iam_policy_document.trust["copier"].json
  max_session_duration = 3600
  tags                 = var.tags
}

data "aws_iam_policy_document" "copier" {
  # CopyDBSnapshot acts on both snapshots ("For a successful request, specify both the
  # source and target snapshots", RDS User Guide, Copying a DB snapshot).
  statement {
    sid       = "CopySharedSnapshotsIntoTheVault"
    actions   = ["rds:CopyDBSnapshot", "rds:CopyDBClusterSnapshot"]
    resources = concat(local.source_snapshot_arns, local.vault_snapshot_arns)
  }

  statement {
    sid       = "TagAndFindVaultCopies"
    actions   = ["rds:AddTagsToResource", "rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots"]
    resources = local.vault_snapshot_arns
  }

  # A full manual snapshot quota is named as such, not waited out as busy copy slots.
  statement {
    sid       = "ReadTheVaultsSnapshotQuota"
    actions   = ["rds:DescribeAccountAttributes"]
    resources = ["*"]
  }

  # The run's check reads the key; RDS encrypts the copies with it.
  statement {
    sid       = "CheckTheVaultKey"
    actions   = ["kms:DescribeKey"]
    resources = [aws_kms_key.vault.arn]
  }

  statement {
    sid       = "EncryptCopiesWithTheVaultKeyThroughRds"
    actions   = ["kms:CreateGrant", "kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey"]
    resources = [aws_kms_key.vault.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = local.rds_services
    }
  }

  # The key of a snapshot shared with the vault: its policy must let this account in too
  # (RDS User Guide, "Sharing encrypted snapshots"; the source module's policy does).
  statement {
    sid       = "DecryptSharedSnapshotsThroughRds"
    actions   = ["kms:CreateGrant", "kms:Decrypt", "kms:DescribeKey"]
    resources = local.source_key_arns
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = local.rds_services
    }
  }

  # Whatever else is ever attached to this role: the source account cannot delete, unshare,
  # restore, export or remove tags from the vault's copies, or change the vault's key, through
  # it, nor invoke or reschedule the vault's prune. (It can add tags, which a copy needs: a tag
  # it overwrites is the one thing it can change.)
  statement {
    sid    = "NeverDeleteOrExposeTheVault"
    effect = "Deny"
    actions = [
      "rds:DeleteDBSnapshot", "rds:DeleteDBClusterSnapshot",
      "rds:ModifyDBSnapshotAttribute", "rds:ModifyDBClusterSnapshotAttribute", "rds:ModifyDBSnapshot",
      "rds:RemoveTagsFromResource",
      "rds:RestoreDBInstanceFromDBSnapshot", "rds:RestoreDBClusterFromSnapshot",
      "rds:StartExportTask",
      "kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:PutKeyPolicy",
      "iam:*", "lambda:*", "events:*",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "copier" {
  name   = "copy-into-the-vault"
  role   = aws_iam_role.copier.id
  policy = data.aws_iam_policy_document.copier.json
}
