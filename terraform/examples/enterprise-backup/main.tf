# The spec's advanced example, as written: cross-region copies to us-west-2, S3 exports
# with lifecycle, a caller-owned KMS key, SNS topic and VPC (from the small modules in
# ./modules, standing in for an organisation's own), Slack, detailed monitoring.
# Copies in us-west-2 use the AWS managed RDS key there unless cross_region_kms_key_arn is set.

provider "aws" {
  region = var.aws_region
}

module "security_baseline" {
  source = "./modules/security-baseline"

  name = "nestedphoenix-prod"
}

module "notifications" {
  source = "./modules/notifications"

  name        = "nestedphoenix-prod-alerts"
  kms_key_arn = module.security_baseline.kms_key_arn
}

module "shared_networking" {
  source = "./modules/shared-networking"

  name       = "nestedphoenix-prod"
  cidr_block = "10.40.0.0/16"
}

module "database_backup" {
  source = "../.."

  # Required Variables
  project_name = "nestedphoenix"
  environment  = "production"

  # Database Configuration
  rds_instance_ids = [
    "prod-database-1",
    "prod-database-2",
    "prod-read-replica-1"
  ]

  # Backup Configuration
  backup_retention_days    = 90
  backup_schedule          = "cron(0 2 * * ? *)" # Daily at 2 AM
  enable_cross_region_copy = true
  cross_region_destination = "us-west-2"

  # S3 Configuration
  s3_bucket_name       = "nestedphoenix-prod-db-backups"
  s3_storage_class     = "STANDARD_IA"
  enable_s3_versioning = true
  s3_lifecycle_rules = {
    transition_to_ia_days           = 30
    transition_to_glacier_days      = 90
    transition_to_deep_archive_days = 365
    expiration_days                 = 2555 # 7 years
  }

  # Encryption Configuration
  kms_key_id           = module.security_baseline.kms_key_id
  enable_s3_encryption = true

  # Lambda Configuration
  lambda_timeout     = 900 # 15 minutes
  lambda_memory_size = 512
  lambda_runtime     = "python3.9"

  # Monitoring Configuration
  enable_cloudwatch_logs     = true
  log_retention_days         = 30
  enable_detailed_monitoring = true

  # Notification Configuration
  notification_email = "dba-team@company.com"
  slack_webhook_url  = var.slack_webhook_url
  sns_topic_arn      = module.notifications.email_topic_arn

  # Network Configuration
  vpc_id               = module.shared_networking.vpc_id
  subnet_ids           = module.shared_networking.private_subnet_ids
  enable_vpc_endpoints = true

  # Additional Tags
  additional_tags = {
    Owner           = "DBA Team"
    BackupType      = "Automated"
    Compliance      = "SOX"
    RetentionPolicy = "7-years"
  }
}
