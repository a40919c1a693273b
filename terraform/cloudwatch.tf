# Alarms (to the notification topic, or alarm_sns_topic_arn) and the dashboard.

locals {
  alarm_actions      = [coalesce(var.alarm_sns_topic_arn, local.sns_topic_arn)]
  detailed_databases = var.enable_detailed_monitoring ? toset(local.databases) : toset([])
  # Every metric carries the instance (dimension BackupInstance, the managed-by value), so
  # instances sharing an account and a namespace never move each other's alarms. The
  # run-wide alarms (key "*": no RDS identifier) and, with detailed monitoring, the same
  # per database (dimension DatabaseIdentifier too).
  instance_dimension = { BackupInstance = local.backup_instance }
  alarm_scopes = merge(
    { "*" = { database = null, name_part = "", dimensions = local.instance_dimension } },
    { for db in local.detailed_databases : db => { database = db, name_part = "${db}-", dimensions = merge(local.instance_dimension, { DatabaseIdentifier = db }) } },
  )
}

resource "aws_cloudwatch_metric_alarm" "backup_failure" {
  for_each = local.alarm_scopes

  alarm_name          = "${local.prefix}-${each.value.name_part}backup-failure"
  alarm_description   = each.value.database == null ? "Database backup failure detected: a database, prune or the run itself failed (see the run's notification)." : "The backup of ${each.value.database} failed."
  namespace           = var.metrics_namespace
  metric_name         = "BackupFailure"
  dimensions          = each.value.dimensions
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = local.tags
}

# SnapshotAge is measured every hour, whatever backup_schedule is: CloudWatch evaluates at most
# 7 days of periods (PutMetricAlarm: Period x EvaluationPeriods <= 604,800 s), so an age put only
# when a weekly or monthly run ends would leave the alarm without data most of the time.
# Notify measures it (functions/notify/src/age.rs) from the module's databases, given here, at
# the time the rule fired (the event's `time`: EventBridge fills in <time>). jsonencode would
# escape the placeholder's angle brackets, so it goes in after.
locals {
  snapshot_age_input = replace(
    jsonencode({ snapshot_age = { databases = local.databases, at = "EVENT_TIME" } }),
    "\"EVENT_TIME\"", "\"<time>\""
  )
}

resource "aws_cloudwatch_event_rule" "snapshot_age" {
  name                = "${local.prefix}-snapshot-age"
  description         = "Every hour: the age of each ${local.prefix} database's newest backup (SnapshotAge, for the no-recent-backup alarm) and its point-in-time recovery (RestorableLag, BackupRetentionDays)"
  schedule_expression = "rate(1 hour)"
  tags                = local.tags
}

resource "aws_cloudwatch_event_target" "snapshot_age" {
  rule = aws_cloudwatch_event_rule.snapshot_age.name
  arn  = aws_lambda_function.backup["notify"].arn

  input_transformer {
    input_paths    = { time = "$.time" }
    input_template = local.snapshot_age_input
  }

  lifecycle {
    precondition {
      condition     = length(local.snapshot_age_input) <= 8192
      error_message = "The ${length(local.databases)} databases make the snapshot-age rule's input ${length(local.snapshot_age_input)} characters; EventBridge takes at most 8192 (PutTargets, InputTransformer.InputTemplate). Split the databases among module instances."
    }
  }
}

resource "aws_lambda_permission" "snapshot_age" {
  statement_id  = "MeasureSnapshotAgeHourly"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.backup["notify"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.snapshot_age.arn
}

# The newest backup is older than the bound in 2 of the last 3 hours. An hour without a
# SnapshotAge data point counts as breaching: the hourly measurement failing, or a database
# never backed up (no run-wide age then), alarms too.
resource "aws_cloudwatch_metric_alarm" "no_recent_backup" {
  for_each = local.alarm_scopes

  alarm_name          = "${local.prefix}-${each.value.name_part}no-recent-backup"
  alarm_description   = "No backup${each.value.database == null ? "" : " of ${each.value.database}"} newer than ${local.snapshot_age_alarm_hours} hours (schedule ${var.backup_schedule})."
  namespace           = var.metrics_namespace
  metric_name         = "SnapshotAge"
  dimensions          = each.value.dimensions
  statistic           = "Maximum"
  period              = 3600
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = local.snapshot_age_alarm_hours
  treat_missing_data  = "breaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}

# Point-in-time recovery, measured every hour beside SnapshotAge: the latest restorable time
# lags by more than the bound (RDS keeps it "typically within 5 minutes of the current time",
# RDS User Guide, Restoring a DB instance to a specified time) in 2 of the last 3 hours (one
# hour after a restart or failover does not page). A stopped database puts no lag: a missing
# hour is not breaching, so it does not flap.
resource "aws_cloudwatch_metric_alarm" "restorable_lag" {
  for_each = local.alarm_scopes

  alarm_name          = "${local.prefix}-${each.value.name_part}restorable-lag"
  alarm_description   = "Point-in-time recovery${each.value.database == null ? " of a database" : " of ${each.value.database}"} lags more than ${var.restorable_lag_alarm_minutes} minutes (LatestRestorableTime)."
  namespace           = var.metrics_namespace
  metric_name         = "RestorableLag"
  dimensions          = each.value.dimensions
  statistic           = "Maximum"
  period              = 3600
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.restorable_lag_alarm_minutes
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}

# Automated backups off (retention 0): no point-in-time recovery at all.
resource "aws_cloudwatch_metric_alarm" "automated_backups_off" {
  for_each = local.alarm_scopes

  alarm_name          = "${local.prefix}-${each.value.name_part}automated-backups-off"
  alarm_description   = "Automated backups are off${each.value.database == null ? " for a database" : " for ${each.value.database}"} (backup retention 0): no point-in-time recovery."
  namespace           = var.metrics_namespace
  metric_name         = "BackupRetentionDays"
  dimensions          = each.value.dimensions
  statistic           = "Minimum"
  period              = 3600
  evaluation_periods  = 1
  comparison_operator = "LessThanThreshold"
  threshold           = 1
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  ok_actions          = local.alarm_actions
  tags                = local.tags
}

# An execution of the run (or, with restore_drill, of the drills) that failed, timed out or was
# stopped. A drill that ended outside its own handling sends no report of its own: the hourly
# sweep deletes its database and reports it, and these alarms say so at once.
locals {
  ended_badly = { failed = "ExecutionsFailed", timed-out = "ExecutionsTimedOut", aborted = "ExecutionsAborted" }
  execution_alarms = merge(
    { for end, metric in local.ended_badly : end => { machine = "backup", metric = metric, end = end } },
    local.drill_enabled ? { for end, metric in local.ended_badly : "drill-${end}" => { machine = "drill", metric = metric, end = end } } : {},
  )
}

resource "aws_cloudwatch_metric_alarm" "executions_failed" {
  for_each = local.execution_alarms

  alarm_name          = "${local.prefix}-${each.value.machine}-executions-${each.value.end}"
  alarm_description   = "A ${local.state_machines[each.value.machine].name} execution ${replace(each.value.end, "-", " ")}."
  namespace           = "AWS/States"
  metric_name         = each.value.metric
  dimensions          = { StateMachineArn = aws_sfn_state_machine.workflow[each.value.machine].arn }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = local.tags
}

# Retried errors (a busy database, throttling) count too: the alarm fires when
# errors pile up beyond what retries absorb.
resource "aws_cloudwatch_metric_alarm" "lambda_errors" {
  for_each = local.functions

  alarm_name          = "${local.function_names[each.key]}-errors"
  alarm_description   = "The ${each.key} function failed more than 5 times in an hour."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.backup[each.key].function_name }
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 5
  treat_missing_data  = "notBreaching"
  alarm_actions       = local.alarm_actions
  tags                = local.tags
}

locals {
  ns = var.metrics_namespace
  # "7 daily, 4 weekly" (the tiers with a count, in the order prune names them) or "30 days".
  retention_described = {
    for name, policy in { source = coalesce(var.retention_policy, {}), copies = coalesce(var.copy_retention_policy, var.retention_policy, {}) } :
    name => length(policy) == 0 ? "${var.backup_retention_days} days" : join(", ", [
      for tier in ["daily", "weekly", "monthly", "yearly"] : "${policy[tier]} ${tier}" if lookup(policy, tier, 0) > 0
    ])
  }
  # The regions whose retained snapshots prune measures (RetainedSnapshotGB, EstimatedMonthlyCost).
  retained_regions = compact([local.region, local.copy_region])
  dashboard_widgets = concat(
    [
      {
        type = "text", x = 0, y = 0, width = 24, height = 2
        properties = {
          markdown = "## ${local.prefix} database backup\nSchedule `${var.backup_schedule}` (UTC), backup window ${var.backup_window}, retention ${local.retention_described.source} (newest ${var.min_snapshots_to_keep} always kept)${local.copy_region == null ? "" : ", copies in ${local.copy_region} (retention ${local.retention_described.copies})"}. Databases: ${join(", ", local.databases)}."
        }
      },
      {
        type = "metric", x = 0, y = 2, width = 12, height = 6
        properties = {
          title   = "Database Backup Status"
          metrics = [[local.ns, "BackupSuccess", "BackupInstance", local.backup_instance], [".", "BackupFailure", ".", "."]]
          period  = 300, stat = "Sum", region = local.region, view = "timeSeries"
        }
      },
      {
        type = "metric", x = 12, y = 2, width = 12, height = 6
        properties = {
          title   = "Backup Duration (seconds)"
          metrics = [[local.ns, "BackupDuration", "BackupInstance", local.backup_instance]]
          period  = 3600, stat = "Maximum", region = local.region, view = "timeSeries"
        }
      },
      {
        type = "metric", x = 0, y = 8, width = 12, height = 6
        properties = {
          title       = "Snapshot Age (hours)"
          metrics     = [[local.ns, "SnapshotAge", "BackupInstance", local.backup_instance]]
          period      = 3600, stat = "Maximum", region = local.region, view = "timeSeries"
          annotations = { horizontal = [{ label = "no-recent-backup alarm", value = local.snapshot_age_alarm_hours }] }
        }
      },
      {
        type = "metric", x = 12, y = 8, width = 12, height = 6
        properties = {
          title = "Backup Executions"
          metrics = [
            for name in ["ExecutionsSucceeded", "ExecutionsFailed", "ExecutionsTimedOut", "ExecutionsAborted"] :
            ["AWS/States", name, "StateMachineArn", aws_sfn_state_machine.workflow["backup"].arn]
          ]
          period = 3600, stat = "Sum", region = local.region, view = "timeSeries"
        }
      },
      {
        type = "metric", x = 0, y = 20, width = 24, height = 6
        properties = {
          title = "Retained snapshots (GiB of allocated storage, an upper bound) and exports (GB), and their estimated monthly cost (USD)"
          # One row per metric: flatten would flatten the rows into one list of strings.
          metrics = concat(
            [[local.ns, "RetainedExportGB", "BackupInstance", local.backup_instance, "Region", local.region]],
            concat([for r in local.retained_regions : [
              [local.ns, "RetainedSnapshotGB", "BackupInstance", local.backup_instance, "Region", r],
              [".", "EstimatedMonthlyCost", ".", ".", ".", ".", { yAxis = "right" }],
            ]]...),
          )
          period = 86400, stat = "Maximum", region = local.region, view = "timeSeries"
        }
      },
      {
        type = "metric", x = 0, y = 14, width = 24, height = 6
        properties = {
          title   = "Function Errors and Throttles"
          metrics = concat([for f in sort(tolist(local.functions)) : [["AWS/Lambda", "Errors", "FunctionName", local.function_names[f]], [".", "Throttles", ".", "."]]]...)
          period  = 3600, stat = "Sum", region = local.region, view = "timeSeries"
        }
      },
    ],
    [
      for i, db in sort(tolist(local.detailed_databases)) : {
        type = "metric", x = (i % 2) * 12, y = 26 + floor(i / 2) * 6, width = 12, height = 6
        properties = {
          title = "${db}: status and snapshot age"
          metrics = [
            [local.ns, "BackupSuccess", "BackupInstance", local.backup_instance, "DatabaseIdentifier", db, { stat = "Sum" }],
            [".", "BackupFailure", ".", ".", ".", ".", { stat = "Sum" }],
            [".", "SnapshotAge", ".", ".", ".", ".", { stat = "Maximum", yAxis = "right" }],
          ]
          period = 3600, region = local.region, view = "timeSeries"
        }
      }
    ],
  )
}

resource "aws_cloudwatch_dashboard" "backup" {
  count = var.create_dashboard ? 1 : 0

  dashboard_name = "${local.prefix}-database-backup"
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}
