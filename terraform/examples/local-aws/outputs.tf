output "state_machine_arn" {
  description = "The backup state machine"
  value       = module.database_backup.state_machine_arn
}

output "drill_state_machine_arn" {
  description = "The restore drill state machine"
  value       = module.database_backup.drill_state_machine_arn
}

output "schedule_rule_name" {
  description = "The EventBridge rule that starts scheduled backups"
  value       = module.database_backup.schedule_rule_name
}

output "s3_bucket_name" {
  description = "Where snapshot exports land"
  value       = module.database_backup.s3_bucket_name
}

output "sns_topic_arn" {
  description = "The topic of the run summaries and alarms"
  value       = module.database_backup.sns_topic_arn
}

output "notification_inbox_url" {
  description = "The SQS queue subscribed to the topic"
  value       = aws_sqs_queue.notification_inbox.url
}

output "lambda_function_names" {
  description = "The nine functions (the drill's with restore_drill)"
  value       = module.database_backup.lambda_function_names
}

output "metrics_namespace" {
  description = "Namespace of the backup metrics"
  value       = module.database_backup.metrics_namespace
}

output "copy_region" {
  description = "Region of the snapshot copies"
  value       = var.copy_region
}

output "managed_by_tag_value" {
  description = "The instance's managed-by tag value: the BackupInstance dimension of its metrics"
  value       = module.database_backup.managed_by_tag_value
}

output "vault_account_id" {
  description = "The vault account, which holds a copy of every snapshot"
  value       = module.vault.account_id
}

output "vault_kms_key_arn" {
  description = "The vault's key, which encrypts every vault copy"
  value       = module.vault.kms_key_arn
}

output "vault_share_kms_key_arn" {
  description = "The key snapshots are copied with in this account before they are shared with the vault"
  value       = module.database_backup.vault_share_kms_key_arn
}

output "vault_role_arn" {
  description = "The vault account's role the vault function assumes: it may copy and tag, nothing else"
  value       = module.vault.role_arn
}

output "vault_function_names" {
  description = "The vault account's functions: its prune, and its hourly VaultSnapshotAge measurement"
  value       = module.vault.function_names
}

output "vault_rule_names" {
  description = "The vault account's rules that invoke them"
  value       = module.vault.rule_names
}

output "vault_alarm_topic_arn" {
  description = "The vault account's alarm topic: subscribe to hear of a database without a recent vault copy"
  value       = module.vault.alarm_topic_arn
}
