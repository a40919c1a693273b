# The eight functions (nine with restore_drill, ten with its sql_probe), from the zips scripts/build-lambdas writes (or the release
# package holds): in this directory's lambda/, in lambda_package_dir, or in S3.

data "aws_s3_object" "lambda_checksums" {
  count = local.zips_from_s3 ? 1 : 0

  bucket = var.lambda_s3_bucket
  key    = "${var.lambda_s3_key_prefix}SHA256SUMS.txt"
}

# The provider's default_tags reach every resource here but never the snapshots, which the
# functions create: they get them too, additional_tags winning, and the module's own keys
# (Project, Environment, database-backup:*) winning over both.
data "aws_default_tags" "current" {}

locals {
  snapshot_user_tags = merge(
    { for key, value in data.aws_default_tags.current.tags : key => value if !contains([var.project_tag_key, var.environment_tag_key], key) && !startswith(key, "database-backup:") },
    var.additional_tags,
  )
  common_environment = merge({
    PROJECT_NAME    = var.project_name
    ENVIRONMENT     = var.environment
    BACKUP_INSTANCE = local.backup_instance
    ADDITIONAL_TAGS = jsonencode(local.snapshot_user_tags)
    }, var.project_tag_key == "Project" && var.environment_tag_key == "Environment" ? {} : {
    PROJECT_TAG_KEY     = var.project_tag_key
    ENVIRONMENT_TAG_KEY = var.environment_tag_key
    }, length(var.adopt_snapshots_managed_by) == 0 ? {} : {
    ADOPTED_INSTANCES = jsonencode(var.adopt_snapshots_managed_by)
  })
  copy_environment = local.copy_region == null ? {} : { COPY_DESTINATION_REGION = local.copy_region }

  function_environment = {
    select   = local.selects_by_criteria ? { SELECTION = jsonencode(local.selection) } : {}
    snapshot = local.common_environment
    "wait-for-available" = {
      EXPORT_SLOT_QUEUE_URL = local.export_slot_queue_url
      SCHEDULE_GROUP_NAME   = aws_scheduler_schedule_group.polls.name
      SCHEDULER_ROLE_ARN    = aws_iam_role.poll_scheduler.arn
    }
    export = merge(local.common_environment, {
      EXPORT_BUCKET      = aws_s3_bucket.backup.id
      EXPORT_ROLE_ARN    = aws_iam_role.export.arn
      EXPORT_KMS_KEY_ARN = local.kms_key_arn
      EXPORT_TIERS       = length(var.s3_export_tiers) == 0 ? "" : jsonencode(var.s3_export_tiers)
      # A first try that finds a slot free leaves it to the waiters, if any (hand-on).
      EXPORT_SLOT_QUEUE_URL = local.export_slot_queue_url
    })
    copy = merge(local.common_environment, local.copy_environment, local.copy_region == null ? {} : {
      COPY_KMS_KEY_ARN   = local.copy_kms_key_arn
      COPY_OPTION_GROUPS = jsonencode(var.cross_region_option_groups)
    })
    vault = merge(local.common_environment, local.vault_environment)
    prune = merge(local.common_environment, local.copy_environment, {
      # What the exports hold (exports made before enable_s3_export went off too), for the run
      # summary's retained storage and cost. The bucket's own name: the configured one when it
      # is created, known when planning (its id is not, and prune's environment stays readable
      # in the plan), and the name it keeps when the configured one changes (s3.tf).
      EXPORT_BUCKET         = aws_s3_bucket.backup.bucket
      RETENTION_DAYS        = tostring(var.backup_retention_days)
      MIN_SNAPSHOTS_TO_KEEP = tostring(var.min_snapshots_to_keep)
      DRY_RUN               = tostring(var.prune_dry_run)
      # A database with no snapshot newer than the no-recent-backup alarm's bound keeps them all.
      MAX_SNAPSHOT_AGE_HOURS = tostring(local.snapshot_age_alarm_hours)
      RETENTION_POLICY       = var.retention_policy == null ? "" : jsonencode(var.retention_policy)
      COPY_RETENTION_POLICY  = var.copy_retention_policy == null ? "" : jsonencode(var.copy_retention_policy)
      PRUNE_GUARD_FRACTION   = tostring(var.prune_guard_fraction)
    })
    notify = merge(local.common_environment, {
      SNS_TOPIC_ARN              = local.sns_topic_arn
      METRICS_NAMESPACE          = var.metrics_namespace
      DATABASE_STATE_MACHINE_ARN = local.database_state_machine_arn
      AUTOMATED_BACKUPS = var.manage_automated_backups == null ? "" : jsonencode({
        retention_days    = var.manage_automated_backups.retention_days
        window            = var.backup_window
        shorten_retention = var.manage_automated_backups.shorten_retention
      })
    }, local.slack_webhook_environment)
    drill = local.drill_environment
    probe = {}
  }
}

resource "aws_cloudwatch_log_group" "function" {
  # checkov:skip=CKV_AWS_338: retention is the caller's log_retention_days (the spec's default is 14 days)
  for_each = var.enable_cloudwatch_logs ? local.functions : toset([])

  name              = "/aws/lambda/${local.function_names[each.key]}"
  log_group_class   = var.log_group_class
  retention_in_days = var.log_retention_days
  kms_key_id        = local.kms_key_arn
  tags              = local.tags
}

resource "aws_lambda_function" "backup" {
  # checkov:skip=CKV_AWS_116: the state machine invokes synchronously and catches every error; a DLQ only serves asynchronous invokes
  # checkov:skip=CKV_AWS_117: running in a VPC is the caller's choice (vpc_id, subnet_ids); the functions only call AWS APIs and Slack
  # checkov:skip=CKV_AWS_272: the zips are built from this repository by scripts/build-lambdas; code signing needs an AWS Signer profile the caller owns
  for_each = local.functions

  function_name    = local.function_names[each.key]
  description      = "database-backup ${each.key} (${local.prefix})"
  role             = aws_iam_role.function[each.key].arn
  runtime          = local.lambda_runtime
  handler          = "bootstrap"
  architectures    = [var.lambda_architecture]
  filename         = local.zips_from_s3 ? null : local.packages[each.key]
  s3_bucket        = local.zips_from_s3 ? var.lambda_s3_bucket : null
  s3_key           = local.zips_from_s3 ? "${var.lambda_s3_key_prefix}${local.package_keys[each.key]}" : null
  source_code_hash = local.zips_from_s3 ? lookup(local.s3_checksums, local.package_keys[each.key], null) : (fileexists(local.packages[each.key]) ? filebase64sha256(local.packages[each.key]) : null)
  timeout          = var.lambda_timeout
  memory_size      = var.lambda_memory_size
  kms_key_arn      = local.kms_key_arn

  reserved_concurrent_executions = var.lambda_reserved_concurrency

  dynamic "environment" {
    for_each = length(local.function_environment[each.key]) > 0 ? [1] : []
    content {
      variables = local.function_environment[each.key]
    }
  }

  logging_config {
    log_format = "JSON"
    log_group  = "/aws/lambda/${local.function_names[each.key]}"
  }

  tracing_config {
    mode = var.enable_xray_tracing ? "Active" : "PassThrough"
  }

  # The probe runs in the drill databases' VPC (restore_drill.sql_probe), whatever the others do.
  dynamic "vpc_config" {
    for_each = each.key == "probe" ? [{ subnet_ids = local.sql_probe.subnet_ids, security_group_ids = local.sql_probe.security_group_ids }] : (
      local.in_vpc ? [{ subnet_ids = var.subnet_ids, security_group_ids = local.function_security_group_ids }] : []
    )
    content {
      subnet_ids         = vpc_config.value.subnet_ids
      security_group_ids = vpc_config.value.security_group_ids
    }
  }

  tags = local.tags

  lifecycle {
    # The environment is what the function reads (statemachine/contract.json): every
    # variable set is one it reads, and none it requires is missing (the copy and vault
    # functions are only invoked when copies, or a vault, are configured).
    precondition {
      condition     = setunion(local.functions, ["drill", "probe"]) == toset(keys(local.contract.functions))
      error_message = "The module deploys ${join(", ", local.functions)} (and drill with restore_drill, probe with its sql_probe); statemachine/contract.json lists ${join(", ", keys(local.contract.functions))}."
    }
    precondition {
      condition = alltrue(concat(
        [for name in keys(local.function_environment[each.key]) : contains(local.contract.functions[each.key].environment[*].name, name)],
        [for v in local.contract.functions[each.key].environment : contains(keys(local.function_environment[each.key]), v.name) if v.required && (each.key != "copy" || local.copy_region != null) && (each.key != "vault" || var.vault != null)],
      ))
      error_message = "The ${each.key} function's environment (${join(", ", keys(local.function_environment[each.key]))}) does not match what it reads: ${join(", ", [for v in local.contract.functions[each.key].environment : "${v.name}${v.required ? "" : " (optional)"}"])}."
    }
    precondition {
      condition     = length(local.snapshot_user_tags) <= 44
      error_message = "Snapshots would carry ${length(local.snapshot_user_tags)} tags of the provider's default_tags and additional_tags together; RDS allows 50 per snapshot and the module sets 6 itself: at most 44."
    }
    precondition {
      condition     = local.zips_from_s3 || fileexists(local.packages[each.key])
      error_message = "The ${each.key} function's zip ${local.packages[each.key]} is missing: run scripts/build-lambdas${var.lambda_architecture == "arm64" ? " --arm64" : ""}, or point lambda_package_dir at the built zips (or lambda_s3_bucket at a copy of them in S3)."
    }
    precondition {
      condition     = !local.zips_from_s3 || contains(keys(local.s3_checksums), local.package_keys[each.key])
      error_message = "s3://${coalesce(var.lambda_s3_bucket, "-")}/${var.lambda_s3_key_prefix}SHA256SUMS.txt does not list ${local.package_keys[each.key]}: upload the release's lambda/ directory, SHA256SUMS.txt included, to that prefix (S3 must serve SHA256SUMS.txt as text, Content-Type text/plain, for Terraform to read it)."
    }
  }

  depends_on = [aws_cloudwatch_log_group.function, aws_iam_role_policy.function]
}
