output "key_arn" {
  description = "The key: give it to the source module as vault.cluster_share_kms_key_arn (when applied in the vault's region)."
  value       = aws_kms_key.this.arn
}
