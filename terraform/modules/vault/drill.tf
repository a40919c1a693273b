# Restore drills of the vault's copies (allow_restore_drills): the role through which the
# source's drill function (restore_drill with copy = "vault") restores the vault's newest copies
# in this account, to drill databases named drill-<hash>-*, tagged as its drills, and deletes
# them. A restore makes a new database and leaves the copy as it was; every deletion of a
# snapshot, sharing, copy, export, key change and change to a database is denied outright, as
# for the copier role. The drill function restores into the subnet group and security groups
# restore_drill names (this account's), never publicly accessible; IAM does not hold a caller
# of this role to those settings (the data is the source account's own), nor to an instance class.

locals {
  # The source module's drill identifier prefix: drill-<instance_hash>- (its main.tf), from the
  # source account and managed-by value both modules know.
  drill_identifier_prefix = "drill-${substr(sha256("${var.source_account_id}/${var.source_managed_by}"), 0, 6)}-"
  drill_databases = [
    "${local.rds_arn}:${local.region}:${local.account}:db:${local.drill_identifier_prefix}*",
    "${local.rds_arn}:${local.region}:${local.account}:cluster:${local.drill_identifier_prefix}*",
  ]
}

resource "aws_iam_role" "drill" {
  count = var.allow_restore_drills ? 1 : 0

  name                 = "${var.name}-vault-drill"
  description          = "database-backup: the source account ${var.source_account_id} restores the vault's copies to drill databases and deletes those, and nothing else"
  assume_role_policy   = data.aws_iam_policy_document.trust["drill"].json
  max_session_duration = 3600
  tags                 = var.tags
}

data "aws_iam_policy_document" "drill" {
  count = var.allow_restore_drills ? 1 : 0

  # Picking the newest copy, planning the restore (no database by the drill's identifier yet)
  # and reading the drill databases; the sweep lists the region's databases.
  statement {
    sid       = "ReadCopiesAndDatabases"
    actions   = ["rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots", "rds:DescribeDBInstances", "rds:DescribeDBClusters"]
    resources = ["${local.rds_arn}:${local.region}:${local.account}:*"]
  }

  # Only the vault's copies of the source's backups (they carry its managed-by tag)...
  statement {
    sid       = "RestoreTheSourcesCopies"
    actions   = ["rds:RestoreDBInstanceFromDBSnapshot", "rds:RestoreDBClusterFromSnapshot"]
    resources = local.vault_snapshot_arns
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/database-backup:managed-by"
      values   = [var.source_managed_by]
    }
  }

  # ...to databases named with the source's drill prefix, created with their tags...
  statement {
    sid       = "CreateDrillDatabases"
    actions   = ["rds:RestoreDBInstanceFromDBSnapshot", "rds:RestoreDBClusterFromSnapshot", "rds:AddTagsToResource"]
    resources = local.drill_databases
  }

  # ...and a restored Aurora cluster's writer, added only to a cluster carrying the source's
  # drill tag...
  statement {
    sid       = "AddWritersToDrillClusters"
    actions   = ["rds:CreateDBInstance"]
    resources = ["${local.rds_arn}:${local.region}:${local.account}:db:${local.drill_identifier_prefix}*"]
    # The writer carries the drill tag: no other instance may be created under the prefix.
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/database-backup:drill"
      values   = [var.source_managed_by]
    }
  }
  statement {
    sid       = "OnlyToDrillClusters"
    actions   = ["rds:CreateDBInstance"]
    resources = ["${local.rds_arn}:${local.region}:${local.account}:cluster:${local.drill_identifier_prefix}*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/database-backup:drill"
      values   = [var.source_managed_by]
    }
  }

  # ...in this account's subnet, option and parameter groups.
  statement {
    sid     = "RestoreIntoTheVaultsGroups"
    actions = ["rds:RestoreDBInstanceFromDBSnapshot", "rds:RestoreDBClusterFromSnapshot", "rds:CreateDBInstance"]
    resources = [for kind in ["subgrp", "og", "pg", "cluster-pg"] :
      "${local.rds_arn}:${local.region}:${local.account}:${kind}:*"
    ]
  }

  # The copies are encrypted with the vault's key: RDS uses it for the restored database.
  statement {
    sid       = "UseTheVaultKeyThroughRds"
    actions   = ["kms:DescribeKey", "kms:CreateGrant"]
    resources = [aws_kms_key.vault.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["rds.${local.region}.${local.dns_suffix}"]
    }
  }

  # Deleted: only databases carrying the source's drill tag.
  statement {
    sid       = "DeleteDrillDatabases"
    actions   = ["rds:DeleteDBInstance", "rds:DeleteDBCluster"]
    resources = local.drill_databases
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/database-backup:drill"
      values   = [var.source_managed_by]
    }
  }

  # Whatever else is ever attached to this role: no copy is deleted, shared, copied, exported or
  # untagged, no database changed (made public, its password reset), snapshotted or replicated
  # out, the key left alone.
  statement {
    sid    = "NeverDeleteOrExposeTheVault"
    effect = "Deny"
    actions = [
      "rds:DeleteDBSnapshot", "rds:DeleteDBClusterSnapshot",
      "rds:ModifyDBSnapshotAttribute", "rds:ModifyDBClusterSnapshotAttribute", "rds:ModifyDBSnapshot",
      "rds:CopyDBSnapshot", "rds:CopyDBClusterSnapshot", "rds:RemoveTagsFromResource",
      "rds:ModifyDBInstance", "rds:ModifyDBCluster", "rds:StartExportTask",
      "rds:CreateDBSnapshot", "rds:CreateDBClusterSnapshot", "rds:CreateDBInstanceReadReplica",
      "rds:StartDBInstanceAutomatedBackupsReplication",
      "rds:RestoreDBInstanceToPointInTime", "rds:RestoreDBClusterToPointInTime",
      "kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:PutKeyPolicy",
      "iam:*", "lambda:*", "events:*",
    ]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "drill" {
  count = var.allow_restore_drills ? 1 : 0

  name   = "restore-drills"
  role   = aws_iam_role.drill[0].id
  policy = data.aws_iam_policy_document.drill[0].json
}
