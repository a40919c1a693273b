output "state_machine_arn" {
  description = "Start a backup now: aws stepfunctions start-execution --state-machine-arn <this> --input '{}'"
  value       = module.database_backup.state_machine_arn
}

output "s3_bucket_name" {
  description = "Where snapshot exports land"
  value       = module.database_backup.s3_bucket_name
}

output "sns_topic_arn" {
  description = "The topic of the run summaries and alarms"
  value       = module.database_backup.sns_topic_arn
}
