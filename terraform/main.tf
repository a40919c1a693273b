data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

locals {
  prefix    = "${var.project_name}-${var.environment}"
  account   = data.aws_caller_identity.current.account_id
  region    = data.aws_region.current.id
  partition = data.aws_partition.current.partition
  # The domain of the partition's endpoints (amazonaws.com), for a queue's URL.
  dns_suffix = data.aws_partition.current.dns_suffix

  # The project and environment tags' keys are configurable: an organisation's tag policy
  # may own Project or Environment (with its own allowed values).
  tags = merge(var.additional_tags, {
    (var.project_tag_key)     = var.project_name
    (var.environment_tag_key) = var.environment
    ManagedBy                 = "database-backup"
  })

  # The value of the managed-by tag on every snapshot (prune touches only snapshots carrying
  # it, or one of adopt_snapshots_managed_by) and the metrics' BackupInstance. Unambiguous:
  # "/" is in neither name, so team-a + prod and team + a-prod differ; and per region, so an
  # instance's copies in another region never pass for those of an instance living there.
  backup_instance = "${var.project_name}/${var.environment}/${local.region}"
  # Names AWS keeps unique per account (IAM roles) or worldwide (S3 buckets) carry a short
  # hash of the account and the instance: another region, or an ambiguous prefix, gets
  # names of its own. (Regional names keep the readable prefix.)
  instance_hash = substr(sha256("${local.account}/${local.backup_instance}"), 0, 6)
  # The managed-by values whose snapshots this instance prunes and counts as its backups.
  owned_managed_by = distinct(concat([local.backup_instance], var.adopt_snapshots_managed_by))

  # The databases the module names; select adds, at each run, those the criteria match.
  databases           = concat(var.rds_instance_ids, var.rds_cluster_ids)
  selects_by_criteria = length(var.selection_tags) + length(var.db_identifier_patterns) > 0
  selection = {
    tags         = var.selection_tags
    exclude_tags = var.exclude_tags
    patterns     = var.db_identifier_patterns
  }

  copy_region = var.enable_cross_region_copy ? var.cross_region_destination : null
  # Regions where the functions read and delete their snapshots.
  snapshot_regions = distinct(compact([local.region, local.copy_region]))

  # Generated from the functions' code (cargo run --package backup-core --bin contract):
  # the functions, the environment each reads, and the Retry policy of their tasks.
  contract = jsondecode(file("${path.module}/statemachine/contract.json"))
  # Written out (a precondition in lambda.tf holds it to the contract's list) so that
  # static checkers such as checkov, which do not read files, expand every function.
  # The drill function only with restore_drill, the probe only with its sql_probe.
  functions = toset(concat(
    ["select", "snapshot", "wait-for-available", "export", "copy", "vault", "prune", "notify"],
    var.restore_drill == null ? [] : concat(["drill"], var.restore_drill.sql_probe == null ? [] : ["probe"]),
  ))
  function_names = {
    for f in local.functions : f => "${local.prefix}-${f}"
  }
  function_arns = {
    for f in local.functions : f => "arn:${local.partition}:lambda:${local.region}:${local.account}:function:${local.function_names[f]}"
  }

  # Each database of a run is backed up by its own execution of this state machine (see stepfunctions.tf).
  database_state_machine_name = "${local.prefix}-database"
  database_state_machine_arn  = "arn:${local.partition}:states:${local.region}:${local.account}:stateMachine:${local.database_state_machine_name}"
  database_executions_arn     = "arn:${local.partition}:states:${local.region}:${local.account}:execution:${local.database_state_machine_name}:*"
  # The runs: the backup state machine and its executions (notify reads one that ended badly).
  backup_state_machine_arn = "arn:${local.partition}:states:${local.region}:${local.account}:stateMachine:${local.state_machine_name}"
  backup_executions_arn    = "arn:${local.partition}:states:${local.region}:${local.account}:execution:${local.state_machine_name}:*"

  # The module reads everything from its own directory: statemachine/ and
  # lambda/backup-<function>/bootstrap.zip (in the repository, links to statemachine/ and
  # target/lambda/). The zips can come from elsewhere in the same layout: a directory
  # (lambda_package_dir) or an S3 prefix (lambda_s3_bucket, with its SHA256SUMS.txt).
  zips_from_s3 = var.lambda_s3_bucket != null
  package_dir  = coalesce(var.lambda_package_dir, "${path.module}/lambda")
  package_keys = { for f in local.functions : f => "backup-${f}/bootstrap.zip" }
  packages     = { for f, key in local.package_keys : f => "${local.package_dir}/${key}" }
  # The published checksums (sha256sum's format) by zip, the change trigger of each function
  # whose zip is in S3 (the provider compares it with nothing else).
  s3_checksums = local.zips_from_s3 ? {
    for sum in regexall("(?m)^([0-9a-f]{64})  (\\S+)[\\t\\r ]*$", data.aws_s3_object.lambda_checksums[0].body) : sum[1] => sum[0]
  } : {}

  # Rust binaries need an OS-only runtime; see the lambda_runtime variable.
  lambda_runtime = startswith(var.lambda_runtime, "provided.") ? var.lambda_runtime : "provided.al2023"

  # The schedule's period in hours, for the no-recent-backup alarm: rate(...) exactly;
  # a cron with one fixed day of week weekly, with fixed days of month monthly, else daily.
  rate_parts = regexall("^rate\\(([0-9]+) (minute|hour|day)s?\\)$", var.backup_schedule)
  cron_parts = regexall("^cron\\((\\S+) (\\S+) (\\S+) (\\S+) (\\S+) (\\S+)\\)$", var.backup_schedule)
  schedule_period_hours = (
    length(local.rate_parts) > 0 ? (
      tonumber(local.rate_parts[0][0]) * lookup({ minute = 1 / 60, hour = 1, day = 24 }, local.rate_parts[0][1])
      ) : (
      !contains(["*", "?"], local.cron_parts[0][4]) ? 168 : !contains(["*", "?"], local.cron_parts[0][2]) ? 744 : 24
    )
  )
  snapshot_age_alarm_hours = coalesce(
    var.snapshot_age_alarm_hours,
    ceil(local.schedule_period_hours + max(2, local.schedule_period_hours / 4)),
  )

  # The waits, for the check that each interval is within the bound it polls.
  polled_waits = [
    { runs = true, bound = var.wait_timeout_seconds.snapshot, interval = var.poll_interval_seconds },
    { runs = var.enable_s3_export, bound = var.wait_timeout_seconds.export, interval = var.export_poll_interval_seconds },
    { runs = local.copy_region != null, bound = var.wait_timeout_seconds.copy, interval = var.poll_interval_seconds },
  ]

  # A daily cron with a fixed start, for the backup_window check.
  cron_start_minute = try(
    tonumber(local.cron_parts[0][1]) * 60 + tonumber(local.cron_parts[0][0]),
    null,
  )
  window_start_minute = tonumber(substr(var.backup_window, 0, 2)) * 60 + tonumber(substr(var.backup_window, 3, 2))
  window_end_minute   = tonumber(substr(var.backup_window, 6, 2)) * 60 + tonumber(substr(var.backup_window, 9, 2))
  schedule_in_window = local.cron_start_minute == null ? true : (
    (local.cron_start_minute - local.window_start_minute + 1440) % 1440 <=
    (local.window_end_minute - local.window_start_minute + 1440) % 1440
  )
}

# RDS allows 100 manual DB snapshots and 100 manual DB cluster snapshots per region by
# default (Service Quotas; "Quotas and constraints for Amazon RDS"). The module keeps, of
# each database, every run within the retention (at least min_snapshots_to_keep), plus the
# run's new snapshot until prune runs: in the source region and again in the copy region.
locals {
  runs_within_retention    = ceil(var.backup_retention_days * 24 / local.schedule_period_hours)
  kept_per_database        = max(var.min_snapshots_to_keep, local.runs_within_retention) + 1
  default_manual_snapshots = 100
  kept_instance_snapshots  = length(var.rds_instance_ids) * local.kept_per_database
  kept_cluster_snapshots   = length(var.rds_cluster_ids) * local.kept_per_database
}

check "manual_snapshot_quota" {
  assert {
    condition     = max(local.kept_instance_snapshots, local.kept_cluster_snapshots) <= local.default_manual_snapshots
    error_message = "The module will keep up to ${local.kept_instance_snapshots} manual DB snapshots and ${local.kept_cluster_snapshots} manual DB cluster snapshots per region (${length(var.rds_instance_ids)} instances and ${length(var.rds_cluster_ids)} clusters x ${local.kept_per_database}: ${local.runs_within_retention} runs within ${var.backup_retention_days} days of retention, at least min_snapshots_to_keep ${var.min_snapshots_to_keep}, plus the new one before prune)${local.copy_region == null ? "" : ", in ${local.region} and again in ${local.copy_region}"}, above RDS's default quota of ${local.default_manual_snapshots} of each per region: snapshots beyond it fail with SnapshotQuotaExceeded. Raise \"Manual DB instance snapshots\" and \"Manual DB cluster snapshots\" in Service Quotas (RDS) first, or keep fewer."
  }
}

check "schedule_inside_backup_window" {
  assert {
    condition     = var.manage_automated_backups != null || local.schedule_in_window
    error_message = "backup_schedule ${var.backup_schedule} starts outside backup_window ${var.backup_window} (UTC)."
  }
}

# With manage_automated_backups the window is each database's RDS backup window: RDS backs the
# databases up in it, and a snapshot asked for while a database is backing-up waits for it.
check "schedule_outside_managed_backup_window" {
  assert {
    condition     = var.manage_automated_backups == null || local.cron_start_minute == null || !local.schedule_in_window
    error_message = "backup_schedule ${var.backup_schedule} starts inside backup_window ${var.backup_window} (UTC), which manage_automated_backups makes each database's RDS backup window: snapshots would wait while RDS backs the databases up. Start the schedule outside it."
  }
}
