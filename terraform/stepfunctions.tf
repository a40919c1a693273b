# The two state machines, rendered from statemachine/: the run (backup.asl.json:
# select, a Map over the databases, prune, notify) and one database
# (database.asl.json: snapshot, wait, export and copy), which the run starts once
# per database so that each database's events and result live in its own
# execution; the schedule; and the rule that reports a run which ended outside
# its own error handling.

locals {
  state_machine_name = "${local.prefix}-backup"
  # ARNs from the names, so the plan shows the whole definitions.
  function_arn_values = { for f in local.functions : "${replace(f, "-", "_")}_function_arn" => local.function_arns[f] }
  # Each function's tasks retry as the contract says.
  retry_values       = { for f in local.functions : "${replace(f, "-", "_")}_retry" => jsonencode(local.contract.functions[f].retry) }
  database_functions = ["snapshot", "export", "copy", "vault"]
  # An export that finds every slot taken waits in this queue (sqs.tf); its URL from the
  # name, as SQS forms it, so that the plan shows the whole definition.
  export_slot_queue_url = "https://sqs.${local.region}.${local.dns_suffix}/${local.account}/${aws_sqs_queue.export_slot_waiters.name}"
  # The database's three waits, each one task of statemachine/wait.asl.json: wait-for-available
  # polls when RDS's progress says (its own one-time schedules, at least the interval apart),
  # and ends the task when ready, failed or past the bound (a WaitTimedOut of this database).
  # A snapshot (the database's, or its copy) is polled in its own region, whatever its kind.
  snapshot_poll = { for source in ["snapshot", "copy"] : source => {
    "resource.$"    = "States.Format('{}_snapshot', $.${source}.kind)"
    "snapshot_id.$" = "$.${source}.snapshot_id"
    "region.$"      = "$.${source}.region"
  } }
  waits = {
    snapshot_wait = { state = "Snapshot", ready_next = "ExportAndCopy", failed_next = "SnapshotWaitFailed", interval_field = "poll_interval_seconds", indent = 4, subject = "snapshot", poll_parameters = local.snapshot_poll.snapshot }
    export_wait   = { state = "Export", ready_next = "ExportCompleted", failed_next = "ExportWaitFailed", interval_field = "export_poll_interval_seconds", indent = 12, subject = "export task", poll_parameters = { "resource" = "export_task", "export_task_id.$" = "$.export.export_task_id" } }
    copy_wait     = { state = "Copy", ready_next = "CopyDone", failed_next = "CopyWaitFailed", interval_field = "poll_interval_seconds", indent = 12, subject = "snapshot copy", poll_parameters = local.snapshot_poll.copy }
  }
  wait_tasks = { for name, wait in local.waits : name => indent(wait.indent, templatefile("${path.module}/statemachine/wait.asl.json", {
    state       = wait.state
    ready_next  = wait.ready_next
    failed_next = wait.failed_next
    poll_parameters = jsonencode(merge(wait.poll_parameters, {
      "db_identifier.$"    = "$.db_identifier"
      "execution.$"        = "$.execution"
      "task_token.$"       = "$$.Task.Token"
      "attempt.$"          = "$$.State.RetryCount"
      "wait"               = { "started_at.$" = "$$.State.EnteredTime" }
      "interval_seconds.$" = "$.config.${wait.interval_field}"
      "timeout_seconds.$"  = "$.config.${name}_timeout_seconds"
      "subject"            = wait.subject
      "timeout_field"      = "${name}_timeout_seconds"
    }))
    heartbeat_seconds               = local.contract.waits.heartbeat_seconds
    timeout_seconds                 = local.contract.waits.timeout_seconds
    wait_for_available_function_arn = local.function_arn_values.wait_for_available_function_arn
    wait_for_available_retry        = local.retry_values.wait_for_available_retry
  })) }
  database_state_machine_definition = templatefile("${path.module}/statemachine/database.asl.json", merge(
    { for f in local.database_functions : "${f}_function_arn" => local.function_arn_values["${f}_function_arn"] },
    { for f in local.database_functions : "${f}_retry" => local.retry_values["${f}_retry"] },
    local.wait_tasks,
    { export_slot_queue_url = local.export_slot_queue_url },
  ))
  # The run's settings when its execution input overrides none: one value for each
  # field of the contract's execution_input (a precondition below holds the two together).
  run_defaults = {
    db_instance_ids               = local.databases
    retention_days                = var.backup_retention_days
    min_snapshots_to_keep         = var.min_snapshots_to_keep
    dry_run                       = var.prune_dry_run
    confirm_retention_change      = false
    skip_export                   = !var.enable_s3_export
    skip_copy                     = local.copy_region == null
    skip_vault                    = var.vault == null
    skip_prune                    = false
    poll_interval_seconds         = var.poll_interval_seconds
    export_poll_interval_seconds  = var.export_poll_interval_seconds
    snapshot_wait_timeout_seconds = var.wait_timeout_seconds.snapshot
    export_wait_timeout_seconds   = var.wait_timeout_seconds.export
    copy_wait_timeout_seconds     = var.wait_timeout_seconds.copy
  }
  run_functions = ["select", "vault", "prune", "notify"]
  state_machine_definition = templatefile("${path.module}/statemachine/backup.asl.json", merge(
    { for f in local.run_functions : "${f}_function_arn" => local.function_arn_values["${f}_function_arn"] },
    { for f in local.run_functions : "${f}_retry" => local.retry_values["${f}_retry"] },
    {
      database_state_machine_arn = local.database_state_machine_arn
      run_defaults               = jsonencode(local.run_defaults)
      max_concurrency            = var.max_concurrent_databases
    },
  ))
  state_machines = merge({
    backup   = { name = local.state_machine_name, definition = local.state_machine_definition }
    database = { name = local.database_state_machine_name, definition = local.database_state_machine_definition }
  }, local.drill_enabled ? { drill = { name = local.drill_state_machine_name, definition = local.drill_state_machine_definition } } : {})
}

resource "aws_cloudwatch_log_group" "state_machine" {
  # checkov:skip=CKV_AWS_338: retention is the caller's log_retention_days (the spec's default is 14 days)
  for_each = var.enable_cloudwatch_logs ? local.state_machines : {}

  name              = "/aws/vendedlogs/states/${each.value.name}"
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn
  tags              = local.tags
}

resource "aws_sfn_state_machine" "workflow" {
  # checkov:skip=CKV_AWS_285: execution logging follows enable_cloudwatch_logs (on by default)
  for_each = local.state_machines

  name       = each.value.name
  role_arn   = aws_iam_role.state_machine.arn
  type       = "STANDARD"
  definition = each.value.definition

  dynamic "logging_configuration" {
    for_each = var.enable_cloudwatch_logs ? [1] : []
    content {
      log_destination        = "${aws_cloudwatch_log_group.state_machine[each.key].arn}:*"
      include_execution_data = var.state_machine_log_execution_data
      level                  = var.state_machine_log_level
    }
  }

  tracing_configuration {
    enabled = var.enable_xray_tracing
  }

  tags = local.tags

  lifecycle {
    precondition {
      condition     = sort(keys(local.run_defaults)) == sort(local.contract.execution_input[*].name)
      error_message = "The run's defaults (${join(", ", keys(local.run_defaults))}) are not the execution input's fields in statemachine/contract.json (${join(", ", local.contract.execution_input[*].name)})."
    }
    precondition {
      condition     = local.copy_region != local.region
      error_message = "cross_region_destination ${coalesce(local.copy_region, "-")} is the module's own region: copies must go to another region."
    }
    # A wait's first poll comes one interval after it begins: an interval past the bound would
    # find its wait over at the first poll.
    precondition {
      condition     = alltrue([for wait in local.polled_waits : !wait.runs || wait.interval <= wait.bound])
      error_message = "poll_interval_seconds ${var.poll_interval_seconds} and export_poll_interval_seconds ${var.export_poll_interval_seconds} must not exceed the wait_timeout_seconds they poll (snapshot ${var.wait_timeout_seconds.snapshot}, export ${var.wait_timeout_seconds.export}, copy ${var.wait_timeout_seconds.copy}): a wait's first poll comes one interval after it begins."
    }
    # "This setting [PreSignedUrl] applies only to AWS GovCloud (US) Regions" (CopyDBSnapshot,
    # CopyDBClusterSnapshot API reference): the Rust SDK does not generate it.
    precondition {
      condition     = local.copy_region == null || !anytrue([for region in [local.region, coalesce(local.copy_region, "-")] : strcontains(region, "-gov-")])
      error_message = "Cross-region copies in AWS GovCloud (US) (${local.region} to ${coalesce(local.copy_region, "-")}) are not supported: RDS needs a presigned URL of the copy request there (PreSignedUrl), which the functions' SDK (aws-sdk-rds) does not generate. Set enable_cross_region_copy = false."
    }
  }

  depends_on = [aws_iam_role_policy.state_machine, aws_lambda_function.backup]
}

# Before the database state machine, the run's state machine and log group had no key.
moved {
  from = aws_sfn_state_machine.backup
  to   = aws_sfn_state_machine.workflow["backup"]
}

moved {
  from = aws_cloudwatch_log_group.state_machine[0]
  to   = aws_cloudwatch_log_group.state_machine["backup"]
}

resource "aws_cloudwatch_event_rule" "schedule" {
  name                = "${local.prefix}-backup-schedule"
  description         = "Starts the ${local.prefix} database backup"
  schedule_expression = var.backup_schedule
  tags                = local.tags
}

# An empty input backs up every configured database with the module's settings.
resource "aws_cloudwatch_event_target" "schedule" {
  rule     = aws_cloudwatch_event_rule.schedule.name
  arn      = aws_sfn_state_machine.workflow["backup"].arn
  role_arn = aws_iam_role.schedule.arn
  input    = jsonencode({})
}

# A run that ends outside its own error handling (stopped, timed out, an
# uncatchable error) never reaches its Notify step: this rule hands the status
# change to notify, which reports it unless the run's Notify step already did.
resource "aws_cloudwatch_event_rule" "run_ended_badly" {
  name        = "${local.prefix}-run-ended-badly"
  description = "A ${local.prefix} backup run failed, timed out or was stopped: notify reports it"
  event_pattern = jsonencode({
    source      = ["aws.states"]
    detail-type = ["Step Functions Execution Status Change"]
    detail = {
      # From the name, so the plan shows the whole pattern.
      stateMachineArn = [local.backup_state_machine_arn]
      status          = ["FAILED", "TIMED_OUT", "ABORTED"]
    }
  })
  tags = local.tags
}

resource "aws_cloudwatch_event_target" "run_ended_badly" {
  rule = aws_cloudwatch_event_rule.run_ended_badly.name
  arn  = aws_lambda_function.backup["notify"].arn
}

resource "aws_lambda_permission" "run_ended_badly" {
  statement_id  = "NotifyOfRunsThatEndedBadly"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.backup["notify"].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.run_ended_badly.arn
}
