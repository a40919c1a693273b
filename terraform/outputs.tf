# S3

output "s3_bucket_name" {
  description = "Name of the backup S3 bucket"
  value       = aws_s3_bucket.backup.id
}

output "s3_bucket_arn" {
  description = "ARN of the backup S3 bucket"
  value       = aws_s3_bucket.backup.arn
}

output "s3_bucket_region" {
  description = "Region of the backup S3 bucket"
  value       = aws_s3_bucket.backup.region
}

# Lambda

output "lambda_function_name" {
  description = "Name of the backup Lambda function (the snapshot function; all of them in lambda_function_names)"
  value       = aws_lambda_function.backup["snapshot"].function_name
}

output "lambda_function_arn" {
  description = "ARN of the backup Lambda function (the snapshot function; all of them in lambda_function_arns)"
  value       = aws_lambda_function.backup["snapshot"].arn
}

output "lambda_role_arn" {
  description = "ARN of the Lambda execution role (the snapshot function's; each function has its own, in lambda_role_arns)"
  value       = aws_iam_role.function["snapshot"].arn
}

output "lambda_function_names" {
  description = "Names of the functions, by function (select, snapshot, wait-for-available, export, copy, vault, prune, notify, and drill with restore_drill)"
  value       = { for f, fn in aws_lambda_function.backup : f => fn.function_name }
}

output "lambda_function_arns" {
  description = "ARNs of the functions, by function (drill with restore_drill)"
  value       = { for f, fn in aws_lambda_function.backup : f => fn.arn }
}

output "lambda_role_arns" {
  description = "ARNs of the functions' execution roles, by function"
  value       = { for f, role in aws_iam_role.function : f => role.arn }
}

# CloudWatch

output "cloudwatch_log_group_name" {
  description = "Name of the CloudWatch Log Group (the snapshot function's; null when enable_cloudwatch_logs is false)"
  value       = try(aws_cloudwatch_log_group.function["snapshot"].name, null)
}

output "cloudwatch_log_group_arn" {
  description = "ARN of the CloudWatch Log Group (the snapshot function's; null when enable_cloudwatch_logs is false)"
  value       = try(aws_cloudwatch_log_group.function["snapshot"].arn, null)
}

output "cloudwatch_log_group_names" {
  description = "Names of every log group of the module, by function and state-machine"
  value = merge(
    { for f, group in aws_cloudwatch_log_group.function : f => group.name },
    { for key, group in aws_cloudwatch_log_group.state_machine : lookup({ backup = "state-machine", database = "database-state-machine" }, key, "${key}-state-machine") => group.name },
  )
}

output "cloudwatch_dashboard_name" {
  description = "Name of the CloudWatch dashboard"
  value       = try(aws_cloudwatch_dashboard.backup[0].dashboard_name, null)
}

# SNS

# Known at plan time (built from the name), so held to the topic and its policy: a caller's
# subscription to it waits for the topic, not racing it to NotFound.
output "sns_topic_arn" {
  description = "ARN of the SNS topic for notifications"
  value       = local.sns_topic_arn
  depends_on  = [aws_sns_topic.notifications, aws_sns_topic_policy.notifications]
}

output "sns_topic_name" {
  description = "Name of the SNS topic"
  value       = local.sns_topic_name
  depends_on  = [aws_sns_topic.notifications, aws_sns_topic_policy.notifications]
}

# KMS

output "kms_key_id" {
  description = "ID of the KMS key used for encryption"
  value       = local.kms_key_id
}

output "kms_key_arn" {
  description = "ARN of the KMS key"
  value       = local.kms_key_arn
}

# Step Functions

output "state_machine_arn" {
  description = "ARN of the backup state machine (start a run: aws stepfunctions start-execution --state-machine-arn ... --input '{}')"
  value       = aws_sfn_state_machine.workflow["backup"].arn
}

output "state_machine_name" {
  description = "Name of the backup state machine"
  value       = aws_sfn_state_machine.workflow["backup"].name
}

output "database_state_machine_arn" {
  description = "ARN of the state machine that backs up one database; each run starts one execution of it per database (its executions hold each database's steps and result)"
  value       = aws_sfn_state_machine.workflow["database"].arn
}

output "drill_state_machine_arn" {
  description = "ARN of the restore drill state machine (restore_drill; null without): start a drill with --input '{}' or '{\"databases\": [\"...\"]}'"
  value       = local.drill_enabled ? aws_sfn_state_machine.workflow["drill"].arn : null
}

output "schedule_rule_name" {
  description = "Name of the EventBridge rule that starts the backup on backup_schedule (its target's input is the scheduled run's input)"
  value       = aws_cloudwatch_event_rule.schedule.name
}

output "metrics_namespace" {
  description = "CloudWatch namespace of the backup metrics"
  value       = var.metrics_namespace
}

output "export_role_arn" {
  description = "ARN of the role RDS assumes to write exports into the bucket"
  value       = aws_iam_role.export.arn
}

output "module_version" {
  description = "Version of this module's release (the functions log theirs at cold start and report it in each run summary)"
  value       = local.contract.version
}

output "alarm_arns" {
  description = "ARNs of the module's CloudWatch alarms, by alarm name"
  value = merge(
    { for alarm in aws_cloudwatch_metric_alarm.backup_failure : alarm.alarm_name => alarm.arn },
    { for alarm in aws_cloudwatch_metric_alarm.no_recent_backup : alarm.alarm_name => alarm.arn },
    { for alarm in aws_cloudwatch_metric_alarm.executions_failed : alarm.alarm_name => alarm.arn },
    { for alarm in aws_cloudwatch_metric_alarm.lambda_errors : alarm.alarm_name => alarm.arn },
    { for alarm in concat(aws_cloudwatch_metric_alarm.drill_failed, aws_cloudwatch_metric_alarm.drill_over_target) : alarm.alarm_name => alarm.arn },
  )
}

output "access_log_bucket_name" {
  description = "Name of the S3 access-log bucket (null without enable_s3_access_logging)"
  value       = try(aws_s3_bucket.access_logs[0].id, null)
}

output "managed_by_tag_value" {
  description = "Value of the database-backup:managed-by tag on every snapshot this module instance makes: retention deletes only snapshots carrying it"
  value       = local.backup_instance
}

output "state_machine_role_arn" {
  description = "ARN of the role both state machines run as"
  value       = aws_iam_role.state_machine.arn
}

output "schedule_role_arn" {
  description = "ARN of the role EventBridge starts the scheduled backup with"
  value       = aws_iam_role.schedule.arn
}

output "lambda_security_group_id" {
  description = "ID of the security group the module created for the functions (null outside a VPC, or with lambda_security_group_ids)"
  value       = try(aws_security_group.lambda[0].id, null)
}

output "vpc_endpoint_security_group_id" {
  description = "ID of the security group the module created for its interface endpoints (null when it created none, or with vpc_endpoint_security_group_ids): another instance in the VPC passes it as vpc_endpoint_security_group_ids"
  value       = try(aws_security_group.endpoints[0].id, null)
}

output "vpc_endpoint_ids" {
  description = "IDs of the VPC endpoints the module created, by service (rds, sns, monitoring, logs, states, kms, sts, sqs, scheduler, s3)"
  value       = merge({ for service, endpoint in aws_vpc_endpoint.interface : service => endpoint.id }, { for endpoint in aws_vpc_endpoint.s3 : "s3" => endpoint.id })
}

output "vault_function_role_arn" {
  description = "The vault function's role: the only principal the vault role of modules/vault trusts (it matches the name: <project_name>-<environment>-<six hex digits>-vault)."
  value       = aws_iam_role.function["vault"].arn
}

output "vault_share_kms_key_arn" {
  description = "The key the vault function copies a snapshot with before sharing it with the vault account (null without a vault)."
  value       = one(module.vault_share_key[*].key_arn)
}
