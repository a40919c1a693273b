# Restore drills (restore_drill, docs/operations.md): the <prefix>-drill state machine
# (statemachine/drill.asl.json) and its drill function, the schedule of the drills and the
# hourly sweep, the drill function's IAM, and the alarms on failed and slow drills (those on
# its executions are cloudwatch.tf's).

locals {
  drill_enabled            = var.restore_drill != null
  drill_state_machine_name = "${local.prefix}-drill"
  drill_state_machine_arn  = "arn:${local.partition}:states:${local.region}:${local.account}:stateMachine:${local.drill_state_machine_name}"
  # Every drill database's identifier starts so: IAM lets the drill function create and delete
  # databases with this prefix only, and one instance's prefix is no other's.
  drill_identifier_prefix = "drill-${local.instance_hash}-"
  # Where drill databases may be: the sweep looks in both regions (and in the vault, through
  # its drill role, when it has one).
  drill_regions        = local.drill_enabled ? local.snapshot_regions : []
  vault_drill_role_arn = try(var.vault.drill_role_arn, null)

  drill_environment = local.drill_enabled ? merge(local.common_environment, local.copy_environment, {
    DRILL = jsonencode({
      copy               = var.restore_drill.copy
      identifier_prefix  = local.drill_identifier_prefix
      instance_class     = var.restore_drill.instance_class
      subnet_group       = var.restore_drill.subnet_group_name
      security_group_ids = var.restore_drill.security_group_ids
      rto_minutes        = var.restore_drill.rto_minutes
      keep_minutes       = var.restore_drill.keep_minutes
      max_wait_minutes   = var.restore_drill.max_wait_minutes
      poll_seconds       = var.poll_interval_seconds
      databases          = var.restore_drill.databases
      random_count       = var.restore_drill.random_count
      vault = local.vault_drill_role_arn == null ? null : {
        account_id  = var.vault.account_id
        region      = local.vault_region
        role_arn    = local.vault_drill_role_arn
        external_id = var.vault.external_id
      }
      sql_probe = !local.sql_probe_enabled ? null : {
        secret_arns             = local.sql_probe.secret_arns
        query                   = local.sql_probe.query
        connect_timeout_seconds = local.sql_probe.connect_timeout_seconds
      }
    })
  }) : {}

  drill_state_machine_definition = local.drill_enabled ? templatefile("${path.module}/statemachine/drill.asl.json", {
    drill_function_arn  = local.function_arn_values.drill_function_arn
    drill_retry         = local.retry_values.drill_retry
    notify_function_arn = local.function_arn_values.notify_function_arn
    notify_retry        = local.retry_values.notify_retry
    max_concurrency     = var.max_concurrent_databases
    rto_minutes         = var.restore_drill.rto_minutes
    # The Probe state is entered only for a database the check gave a probe target, which it
    # does only with a sql_probe: without one, the probe function is not deployed.
    probe_function_arn = "arn:${local.partition}:lambda:${local.region}:${local.account}:function:${local.prefix}-probe"
    probe_retry        = jsonencode(local.contract.functions.probe.retry)
  }) : ""
}

# The read-only SQL probe (restore_drill.sql_probe): the probe function runs in the drill
# databases' VPC and reads the secrets of the credentials it logs in with.
locals {
  # Conditionals, not try(): try() of a value holding unknowns (secrets made in the same apply)
  # is unknown, and so would be which functions the module deploys.
  sql_probe_enabled = var.restore_drill == null ? false : var.restore_drill.sql_probe != null
  sql_probe         = local.sql_probe_enabled ? var.restore_drill.sql_probe : null
}

data "aws_iam_policy_document" "probe" {
  count = local.sql_probe_enabled ? 1 : 0

  # A secret's ARN ends in six random characters after its name: one given without them
  # (a partial ARN, as Secrets Manager accepts it) matches through the second pattern.
  statement {
    sid       = "ReadTheProbeSecrets"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = flatten([for arn in distinct(values(local.sql_probe.secret_arns)) : [arn, "${arn}-??????"]])
  }

  # A secret under a customer managed key: Secrets Manager decrypts it on the caller's behalf.
  dynamic "statement" {
    for_each = length(local.sql_probe.secret_kms_key_arns) > 0 ? [1] : []
    content {
      sid       = "DecryptTheProbeSecretsThroughSecretsManager"
      actions   = ["kms:Decrypt"]
      resources = local.sql_probe.secret_kms_key_arns
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.region}.${local.dns_suffix}"]
      }
    }
  }

  lifecycle {
    precondition {
      # The probe reads secrets through its own region's endpoint, as Secrets Manager serves a
      # secret only in its region (or a replica's).
      condition     = alltrue([for arn in values(local.sql_probe.secret_arns) : split(":", arn)[3] == local.region])
      error_message = "restore_drill.sql_probe.secret_arns must name secrets in the module's region, ${local.region}, where the probe reads them (replicate a secret of another region here): ${join(", ", [for db, arn in local.sql_probe.secret_arns : "${db} ${arn}" if split(":", arn)[3] != local.region])}."
    }
  }
}

# The drills on their schedule, and every hour the sweep alone: a drill stopped mid-way never
# deletes its database; the sweep does, once the database's delete-after time has passed.
locals {
  drill_rules = local.drill_enabled ? {
    drill-schedule = { expression = var.restore_drill.schedule, input = {}, description = "Starts the ${local.prefix} restore drill" }
    drill-sweep    = { expression = "rate(1 hour)", input = { sweep_only = true }, description = "Deletes ${local.prefix} drill databases left past their time" }
  } : {}
}

resource "aws_cloudwatch_event_rule" "drill" {
  for_each = local.drill_rules

  name                = "${local.prefix}-${each.key}"
  description         = each.value.description
  schedule_expression = each.value.expression
  tags                = local.tags
}

resource "aws_cloudwatch_event_target" "drill" {
  for_each = local.drill_rules

  rule     = aws_cloudwatch_event_rule.drill[each.key].name
  arn      = aws_sfn_state_machine.workflow["drill"].arn
  role_arn = aws_iam_role.schedule.arn
  input    = jsonencode(each.value.input)
}

data "aws_iam_policy_document" "drill" {
  count = local.drill_enabled ? 1 : 0

  # Picking the backups, planning the restore (the original's settings, no database taken by
  # the new identifier) and reading the drill databases; the sweep lists the regions' databases.
  statement {
    sid       = "ReadDatabasesAndSnapshots"
    actions   = ["rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots", "rds:DescribeDBInstances", "rds:DescribeDBClusters"]
    resources = [for region in local.drill_regions : "${local.rds_arn}:${region}:${local.account}:*"]
  }

  # Only the module's own backups are restored.
  statement {
    sid       = "RestoreOwnBackups"
    actions   = ["rds:RestoreDBInstanceFromDBSnapshot", "rds:RestoreDBClusterFromSnapshot"]
    resources = [for region in local.drill_regions : "${local.rds_arn}:${region}:${local.account}:*snapshot:*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/database-backup:managed-by"
      values   = [local.backup_instance]
    }
  }

  # ...to databases named with the drill prefix, created with their tags...
  statement {
    sid     = "CreateDrillDatabases"
    actions = ["rds:RestoreDBInstanceFromDBSnapshot", "rds:RestoreDBClusterFromSnapshot", "rds:AddTagsToResource"]
    resources = flatten([for region in local.drill_regions : [
      "${local.rds_arn}:${region}:${local.account}:db:${local.drill_identifier_prefix}*",
      "${local.rds_arn}:${region}:${local.account}:cluster:${local.drill_identifier_prefix}*",
    ]])
  }

  # ...and a restored Aurora cluster's writer, a DB instance named with the prefix, added only
  # to a cluster carrying this instance's drill tag (a restored cluster has no instance).
  # (The writer carries the drill tag: no other instance may be created under the prefix.)
  statement {
    sid       = "AddWritersToDrillClusters"
    actions   = ["rds:CreateDBInstance"]
    resources = [for region in local.drill_regions : "${local.rds_arn}:${region}:${local.account}:db:${local.drill_identifier_prefix}*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/database-backup:drill"
      values   = [local.backup_instance]
    }
  }
  statement {
    sid       = "OnlyToOwnDrillClusters"
    actions   = ["rds:CreateDBInstance"]
    resources = [for region in local.drill_regions : "${local.rds_arn}:${region}:${local.account}:cluster:${local.drill_identifier_prefix}*"]
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/database-backup:drill"
      values   = [local.backup_instance]
    }
  }

  # ...in the region's subnet, option and parameter groups (the original's, or those set).
  statement {
    sid     = "RestoreIntoTheRegionsGroups"
    actions = ["rds:RestoreDBInstanceFromDBSnapshot", "rds:RestoreDBClusterFromSnapshot", "rds:CreateDBInstance"]
    resources = flatten([for region in local.drill_regions : [
      "${local.rds_arn}:${region}:${local.account}:subgrp:*",
      "${local.rds_arn}:${region}:${local.account}:og:*",
      "${local.rds_arn}:${region}:${local.account}:pg:*",
      "${local.rds_arn}:${region}:${local.account}:cluster-pg:*",
    ]])
  }

  # An encrypted snapshot is restored with its key: RDS asks KMS on the caller's behalf.
  statement {
    sid       = "UseSnapshotKeysThroughRds"
    actions   = ["kms:DescribeKey", "kms:CreateGrant"]
    resources = [for region in local.drill_regions : "arn:${local.partition}:kms:${region}:${local.account}:key/*"]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = [for region in local.drill_regions : "rds.${region}.${local.dns_suffix}"]
    }
  }

  # Deleted: only databases carrying this instance's drill tag.
  statement {
    sid     = "DeleteOwnDrillDatabases"
    actions = ["rds:DeleteDBInstance", "rds:DeleteDBCluster"]
    resources = flatten([for region in local.drill_regions : [
      "${local.rds_arn}:${region}:${local.account}:db:${local.drill_identifier_prefix}*",
      "${local.rds_arn}:${region}:${local.account}:cluster:${local.drill_identifier_prefix}*",
    ]])
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/database-backup:drill"
      values   = [local.backup_instance]
    }
  }

  # Drills of the vault's copies, and the sweep there: through the vault's drill role, which
  # may restore them to drill databases there and delete those, and nothing else.
  dynamic "statement" {
    for_each = local.vault_drill_role_arn == null ? [] : [1]
    content {
      sid       = "AssumeTheVaultDrillRole"
      actions   = ["sts:AssumeRole"]
      resources = [local.vault_drill_role_arn]
    }
  }
}

# A drill that failed (a restore refused or failed, a check that did not hold, nothing to
# drill) or a drill database the sweep had to delete: RestoreTestFailure, run-wide.
resource "aws_cloudwatch_metric_alarm" "drill_failed" {
  count = local.drill_enabled ? 1 : 0

  alarm_name          = "${local.prefix}-restore-drill-failed"
  alarm_description   = "A restore drill failed: a backup did not restore, or the restored database did not match its snapshot (see the drill's notification)."
  namespace           = var.metrics_namespace
  metric_name         = "RestoreTestFailure"
  dimensions          = local.instance_dimension
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = local.tags
}

# The longest recovery of a drill (RestoreTime, minutes) above the target.
resource "aws_cloudwatch_metric_alarm" "drill_over_target" {
  count = local.drill_enabled ? 1 : 0

  alarm_name          = "${local.prefix}-restore-drill-over-target"
  alarm_description   = "A restore drill took longer than the ${try(var.restore_drill.rto_minutes, 0)} minute target recovery time (restore_drill.rto_minutes)."
  namespace           = var.metrics_namespace
  metric_name         = "RestoreTime"
  dimensions          = local.instance_dimension
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = try(var.restore_drill.rto_minutes, 0)
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = local.tags
}
