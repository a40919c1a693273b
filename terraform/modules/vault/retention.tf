# The vault's own retention and watch, run in the vault account by the vault account: the
# source account can neither delete a copy nor stop the vault from keeping its own rules.
#
# - prune (the module's prune function, its zip) on prune_schedule, with the vault's
#   retention: the same safety rules as in the source (only copies carrying the source's
#   managed-by tag and that RDS records as copied from the source account, never the newest
#   min_snapshots_to_keep of a database, never one not
#   available, nothing of a database whose newest copy is older than the alarm's bound,
#   nothing at all past prune_guard_fraction unless confirmed);
# - notify (the module's notify function) every hour puts VaultSnapshotAge, the age of each
#   database's newest copy, which the no-recent-vault-copy alarm watches.
#
# Their environments are what the functions read (statemachine/contract.json, generated from
# the functions' code), held to it by the preconditions below.

locals {
  package_dir  = coalesce(var.lambda_package_dir, "${path.module}/../../lambda")
  contract     = jsondecode(file("${path.module}/../../statemachine/contract.json"))
  source_parts = split("/", var.source_managed_by)
  settings_environment = {
    PROJECT_NAME    = local.source_parts[0]
    ENVIRONMENT     = local.source_parts[1]
    BACKUP_INSTANCE = var.source_managed_by
  }
  # Each vault function: the module's function whose zip it runs, and its environment.
  vault_functions = {
    prune = {
      runs = "prune"
      environment = merge(local.settings_environment, {
        RETENTION_DAYS         = tostring(var.retention_days)
        MIN_SNAPSHOTS_TO_KEEP  = tostring(var.min_snapshots_to_keep)
        DRY_RUN                = tostring(var.prune_dry_run)
        MAX_SNAPSHOT_AGE_HOURS = tostring(var.no_recent_copy_alarm_hours)
        RETENTION_POLICY       = var.retention_policy == null ? "" : jsonencode(var.retention_policy)
        PRUNE_GUARD_FRACTION   = tostring(var.prune_guard_fraction)
        # The copier role may tag vault snapshots; where RDS says a copy came from, it cannot change.
        COPIED_FROM_ACCOUNT = var.source_account_id
      })
    }
    snapshot-age = {
      runs = "notify"
      environment = merge(local.settings_environment, {
        # Required by notify; the hourly measurement publishes nothing (the alarms do).
        SNS_TOPIC_ARN       = aws_sns_topic.alarms.arn
        METRICS_NAMESPACE   = var.metrics_namespace
        COPIED_FROM_ACCOUNT = var.source_account_id
      })
    }
  }
  vault_function_names = { for f in keys(local.vault_functions) : f => "${var.name}-vault-${f}" }
  vault_snapshots_here = [
    "${local.rds_arn}:${local.region}:${local.account}:snapshot:*",
    "${local.rds_arn}:${local.region}:${local.account}:cluster-snapshot:*",
  ]
}

# The vault's functions' logs, environments and alarm topic are encrypted with a key of their
# own: the vault key, which encrypts every copy, is used by RDS and the copier role only.
resource "aws_kms_key" "operations" {
  description             = "${var.name} database backups: the vault's function logs, environments and alarm topic"
  enable_key_rotation     = true
  deletion_window_in_days = var.kms_key_deletion_window_days
  policy                  = data.aws_iam_policy_document.operations_key.json
  tags                    = var.tags
}

resource "aws_kms_alias" "operations" {
  name          = "alias/${var.name}-database-backup-vault-operations"
  target_key_id = aws_kms_key.operations.key_id
}

data "aws_iam_policy_document" "operations_key" {
  # checkov:skip=CKV_AWS_109: a key policy's resource is always the key itself ("*")
  # checkov:skip=CKV_AWS_111: a key policy's resource is always the key itself ("*"); each service is held to its condition
  # checkov:skip=CKV_AWS_356: a key policy can only name the key itself ("*")
  source_policy_documents = [data.aws_iam_policy_document.administered_by_the_vault_account.json]

  # CloudWatch Logs encrypts the functions' log groups only (AWS's documented statement,
  # CloudWatch Logs User Guide, "Encrypt log data in CloudWatch Logs using AWS KMS").
  statement {
    sid       = "CloudWatchLogsEncryptsTheVaultsLogGroups"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = ["arn:${local.partition}:logs:${local.region}:${local.account}:log-group:/aws/lambda/${var.name}-vault-*"]
    }
  }

  # The vault's alarms publish to its encrypted topic; SNS decrypts for delivery.
  statement {
    sid       = "SnsAndAlarmsUseTheKeyForTheAlarmTopic"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
    resources = ["*"]
    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com", "cloudwatch.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

data "aws_iam_policy_document" "lambda_trust" {
  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = local.vault_functions

  name                 = "${var.name}-vault-${each.key}"
  description          = "database-backup: the vault's ${each.key} function (${var.source_managed_by})"
  assume_role_policy   = data.aws_iam_policy_document.lambda_trust.json
  max_session_duration = 3600
  tags                 = var.tags
}

# What both functions do: log, read their own environment, and list the vault's snapshots
# (prune to decide, the measurement to find each database's newest copy).
data "aws_iam_policy_document" "common" {
  for_each = local.vault_functions

  statement {
    sid       = "WriteOwnLog"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = ["${aws_cloudwatch_log_group.function[each.key].arn}:*"]
  }

  statement {
    sid       = "DecryptOwnEnvironment"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.operations.arn]
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:LambdaFunctionName"
      values   = [local.vault_function_names[each.key]]
    }
  }

  statement {
    sid       = "ListTheVaultsSnapshots"
    actions   = ["rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots"]
    resources = ["${local.rds_arn}:${local.region}:${local.account}:*"]
  }
}

data "aws_iam_policy_document" "prune" {
  # checkov:skip=CKV_AWS_356: rds:DescribeExportTasks names no resource: IAM matches it against "*" only
  source_policy_documents = [data.aws_iam_policy_document.common["prune"].json]

  # A copy an export reads is never deleted. DescribeExportTasks names no resource: IAM
  # matches it against "*" (Service Authorization Reference, Amazon RDS).
  statement {
    sid       = "ReadExportTasks"
    actions   = ["rds:DescribeExportTasks"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "aws:RequestedRegion"
      values   = [local.region]
    }
  }

  # Only copies carrying the source's managed-by value (Service Authorization Reference,
  # Amazon RDS: DeleteDBSnapshot takes rds:snapshot-tag/${TagKey}).
  statement {
    sid       = "DeleteTheSourcesCopies"
    actions   = ["rds:DeleteDBSnapshot"]
    resources = [local.vault_snapshots_here[0]]
    condition {
      test     = "StringEquals"
      variable = "rds:snapshot-tag/database-backup:managed-by"
      values   = [var.source_managed_by]
    }
  }

  statement {
    sid       = "DeleteTheSourcesClusterCopies"
    actions   = ["rds:DeleteDBClusterSnapshot"]
    resources = [local.vault_snapshots_here[1]]
    condition {
      test     = "StringEquals"
      variable = "rds:cluster-snapshot-tag/database-backup:managed-by"
      values   = [var.source_managed_by]
    }
  }

  # Under a retention_policy each kept copy is tagged with the tiers that keep it.
  statement {
    sid       = "TagCopiesWithTheirTiers"
    actions   = ["rds:AddTagsToResource"]
    resources = local.vault_snapshots_here
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/database-backup:managed-by"
      values   = [var.source_managed_by]
    }
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = ["database-backup:retention-tiers"]
    }
  }
}

data "aws_iam_policy_document" "snapshot_age" {
  source_policy_documents = [data.aws_iam_policy_document.common["snapshot-age"].json]

  statement {
    sid       = "PutVaultSnapshotAge"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.metrics_namespace]
    }
  }
}

resource "aws_iam_role_policy" "function" {
  for_each = local.vault_functions

  name   = "vault-${each.key}"
  role   = aws_iam_role.function[each.key].id
  policy = each.key == "prune" ? data.aws_iam_policy_document.prune.json : data.aws_iam_policy_document.snapshot_age.json
}

resource "aws_cloudwatch_log_group" "function" {
  for_each = local.vault_functions

  name              = "/aws/lambda/${local.vault_function_names[each.key]}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.operations.arn
  tags              = var.tags
}

resource "aws_lambda_function" "vault" {
  # checkov:skip=CKV_AWS_116: EventBridge invokes asynchronously and retries; a failure alarms (vault_function_errors)
  # checkov:skip=CKV_AWS_117: the functions only call AWS APIs of the vault account
  # checkov:skip=CKV_AWS_272: the zips are built from this repository by scripts/build-lambdas; code signing needs an AWS Signer profile the caller owns
  # checkov:skip=CKV_AWS_115: one scheduled invocation at a time; a reservation would only take from the account's pool
  # checkov:skip=CKV_AWS_50: X-Ray tracing of two scheduled calls a day adds nothing the logs lack
  for_each = local.vault_functions

  function_name    = local.vault_function_names[each.key]
  description      = "database-backup ${each.value.runs}: the vault's ${each.key} (${var.source_managed_by})"
  role             = aws_iam_role.function[each.key].arn
  runtime          = "provided.al2023"
  handler          = "bootstrap"
  architectures    = [var.lambda_architecture]
  filename         = "${local.package_dir}/backup-${each.value.runs}/bootstrap.zip"
  source_code_hash = fileexists("${local.package_dir}/backup-${each.value.runs}/bootstrap.zip") ? filebase64sha256("${local.package_dir}/backup-${each.value.runs}/bootstrap.zip") : null
  timeout          = each.key == "prune" ? 900 : 60
  memory_size      = 256
  kms_key_arn      = aws_kms_key.operations.arn

  environment {
    variables = each.value.environment
  }

  logging_config {
    log_format = "JSON"
    log_group  = aws_cloudwatch_log_group.function[each.key].name
  }

  tags = var.tags

  lifecycle {
    precondition {
      condition     = fileexists("${local.package_dir}/backup-${each.value.runs}/bootstrap.zip")
      error_message = "The ${each.value.runs} function's zip ${local.package_dir}/backup-${each.value.runs}/bootstrap.zip is missing: run scripts/build-lambdas${var.lambda_architecture == "arm64" ? " --arm64" : ""}, or point lambda_package_dir at the built zips."
    }
    precondition {
      condition = alltrue(concat(
        [for name in keys(each.value.environment) : contains(local.contract.functions[each.value.runs].environment[*].name, name)],
        [for v in local.contract.functions[each.value.runs].environment : contains(keys(each.value.environment), v.name) if v.required],
      ))
      error_message = "The vault's ${each.key} environment (${join(", ", keys(each.value.environment))}) does not match what ${each.value.runs} reads: ${join(", ", [for v in local.contract.functions[each.value.runs].environment : "${v.name}${v.required ? "" : " (optional)"}"])}."
    }
  }

  depends_on = [aws_iam_role_policy.function]
}

# The prune's input: the rule's time is the run's start, from which ages and periods are
# counted (EventBridge fills in <time> and <id>, "Amazon EventBridge input transformation").
# jsonencode would escape the placeholders' angle brackets, so they go in after.
locals {
  prune_input = replace(replace(
    jsonencode({ execution = { execution_id = "EVENT_ID", execution_start_time = "EVENT_TIME" } }),
    "\"EVENT_ID\"", "\"vault-prune:<id>\""), "\"EVENT_TIME\"", "\"<time>\""
  )
  snapshot_age_input = replace(
    jsonencode({ snapshot_age = { databases = var.databases, at = "EVENT_TIME", metric = "VaultSnapshotAge" } }),
    "\"EVENT_TIME\"", "\"<time>\""
  )
  vault_rules = {
    prune = {
      schedule    = var.prune_schedule
      description = "The vault's retention of ${var.source_managed_by}'s copies"
      input       = local.prune_input
    }
    snapshot-age = {
      schedule    = "rate(1 hour)"
      description = "Every hour: the age of each database's newest vault copy (VaultSnapshotAge, for the no-recent-vault-copy alarm)"
      input       = local.snapshot_age_input
    }
  }
}

resource "aws_cloudwatch_event_rule" "vault" {
  for_each = local.vault_rules

  name                = "${var.name}-vault-${each.key}"
  description         = each.value.description
  schedule_expression = each.value.schedule
  tags                = var.tags
}

resource "aws_cloudwatch_event_target" "vault" {
  for_each = local.vault_rules

  rule = aws_cloudwatch_event_rule.vault[each.key].name
  arn  = aws_lambda_function.vault[each.key].arn

  input_transformer {
    input_paths    = { id = "$.id", time = "$.time" }
    input_template = each.value.input
  }

  lifecycle {
    precondition {
      condition     = length(each.value.input) <= 8192
      error_message = "The ${length(var.databases)} databases make the vault's ${each.key} rule's input ${length(each.value.input)} characters; EventBridge takes at most 8192 (PutTargets, InputTransformer.InputTemplate)."
    }
  }
}

resource "aws_lambda_permission" "vault" {
  for_each = local.vault_rules

  statement_id  = "InvokedByTheVaultSchedule"
  action        = "lambda:InvokeFunction"
  function_name = aws_lambda_function.vault[each.key].function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.vault[each.key].arn
}

# The vault's alarms go to its own topic (subscribe to it: the alarm_topic_arn output), and
# to alarm_actions.
resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-vault-alarms"
  display_name      = "${var.name} database backup vault"
  kms_master_key_id = aws_kms_key.operations.arn
  tags              = var.tags
}

# A database's newest vault copy is older than the bound in 2 of the last 3 hours. An hour
# without a VaultSnapshotAge data point counts as breaching: the measurement failing, or a
# database with no copy at all.
resource "aws_cloudwatch_metric_alarm" "no_recent_copy" {
  alarm_name          = "${var.name}-vault-no-recent-copy"
  alarm_description   = "No vault copy of ${var.source_managed_by}'s databases newer than ${var.no_recent_copy_alarm_hours} hours (the oldest database's newest copy)."
  namespace           = var.metrics_namespace
  metric_name         = "VaultSnapshotAge"
  dimensions          = { BackupInstance = var.source_managed_by }
  statistic           = "Maximum"
  period              = 3600
  evaluation_periods  = 3
  datapoints_to_alarm = 2
  comparison_operator = "GreaterThanThreshold"
  threshold           = var.no_recent_copy_alarm_hours
  treat_missing_data  = "breaching"
  alarm_actions       = concat([aws_sns_topic.alarms.arn], var.alarm_actions)
  ok_actions          = concat([aws_sns_topic.alarms.arn], var.alarm_actions)
  tags                = var.tags
}

# What the vault's prune could not do (a deletion RDS refused, tiers not tagged) or would not
# (snapshots carrying the source's tag that RDS does not record as copied from it: a tag
# changed in the vault) it logs as a warning, and its result goes nowhere: the warnings are
# counted from its log (JSON, level WARN or ERROR) and alarm.
resource "aws_cloudwatch_log_metric_filter" "prune_warnings" {
  name           = "${var.name}-vault-prune-warnings"
  log_group_name = aws_cloudwatch_log_group.function["prune"].name
  pattern        = "{ ($.level = \"WARN\") || ($.level = \"ERROR\") }"

  metric_transformation {
    name          = "VaultPruneWarnings"
    namespace     = var.metrics_namespace
    value         = "1"
    default_value = "0"
  }
}

resource "aws_cloudwatch_metric_alarm" "prune_warnings" {
  alarm_name          = "${var.name}-vault-prune-warnings"
  alarm_description   = "The vault's prune left something undone or found a copy it would not count (see /aws/lambda/${local.vault_function_names["prune"]}: its warnings name each)."
  namespace           = var.metrics_namespace
  metric_name         = aws_cloudwatch_log_metric_filter.prune_warnings.metric_transformation[0].name
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = concat([aws_sns_topic.alarms.arn], var.alarm_actions)
  tags                = var.tags
}

# A failed prune or measurement is not silent (EventBridge's asynchronous invocation retries
# twice, then the error stays in the function's Errors metric).
resource "aws_cloudwatch_metric_alarm" "function_errors" {
  for_each = local.vault_functions

  alarm_name          = "${var.name}-vault-${each.key}-errors"
  alarm_description   = "The vault's ${each.key} function failed: see its log, /aws/lambda/${local.vault_function_names[each.key]}."
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.vault[each.key].function_name }
  statistic           = "Sum"
  period              = 3600
  evaluation_periods  = 1
  comparison_operator = "GreaterThanThreshold"
  threshold           = 0
  treat_missing_data  = "notBreaching"
  alarm_actions       = concat([aws_sns_topic.alarms.arn], var.alarm_actions)
  tags                = var.tags
}
