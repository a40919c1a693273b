output "kms_key_arn" {
  description = "The vault's key: give it to the source module as vault.kms_key_arn."
  value       = aws_kms_key.vault.arn
}

output "role_arn" {
  description = "The role the source's vault function assumes: give it to the source module as vault.role_arn."
  value       = aws_iam_role.copier.arn
}

output "account_id" {
  description = "The vault account: give it to the source module as vault.account_id."
  value       = local.account
}

output "region" {
  description = "The vault's region: give it to the source module as vault.region."
  value       = local.region
}

output "alarm_topic_arn" {
  description = "The vault's alarm topic (no recent vault copy, a vault function failing): subscribe to it."
  value       = aws_sns_topic.alarms.arn
}

output "function_names" {
  description = "The vault's functions: prune (its retention, on prune_schedule) and snapshot-age (VaultSnapshotAge, hourly)."
  value       = { for f, function in aws_lambda_function.vault : f => function.function_name }
}

output "rule_names" {
  description = "The EventBridge rules that invoke them."
  value       = { for f, rule in aws_cloudwatch_event_rule.vault : f => rule.name }
}

output "drill_role_arn" {
  description = "The role the source's drill function assumes to restore the vault's copies (allow_restore_drills): give it to the source module as vault.drill_role_arn. null when allow_restore_drills is false."
  value       = one(aws_iam_role.drill[*].arn)
}
