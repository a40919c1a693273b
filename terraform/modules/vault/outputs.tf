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
