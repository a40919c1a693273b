# Long-term retention for compliance: a monthly snapshot kept 7 years, copied to a second
# region with a customer-managed key there, exported to S3 and archived to Deep Archive,
# seven years of logs, per-database alarms, and a run that fails loudly when anything fails.
#
# Quota: monthly snapshots kept 7 years are 85 per database in each region. RDS allows 100
# manual snapshots per region by default; the snapshot function checks the quota before
# each snapshot and fails with QuotaExceeded rather than silently. Ask AWS for more before
# adding a second database.

provider "aws" {
  region = var.aws_region
}

module "database_backup" {
  source = "../.."

  project_name = "ledger"
  environment  = "production"

  rds_instance_ids = ["ledger-primary"]

  # 03:00 UTC on the first of every month.
  backup_schedule       = "cron(0 3 1 * ? *)"
  backup_window         = "03:00-04:00"
  backup_retention_days = 2555 # 7 years
  min_snapshots_to_keep = 12

  enable_cross_region_copy = true
  cross_region_destination = var.copy_region
  cross_region_kms_key_arn = var.copy_region_kms_key_arn

  enable_s3_export     = true
  enable_s3_versioning = true
  s3_lifecycle_rules = {
    transition_to_ia_days           = 30
    transition_to_glacier_days      = 90
    transition_to_deep_archive_days = 180
    expiration_days                 = 2555
  }
  enable_s3_encryption     = true
  enable_s3_access_logging = true

  lambda_runtime              = "provided.al2023"
  lambda_reserved_concurrency = 2

  enable_cloudwatch_logs     = true
  log_retention_days         = 2557 # 7 years
  enable_detailed_monitoring = true

  notification_email = var.notification_email

  additional_tags = {
    Compliance      = "SOX"
    RetentionPolicy = "7-years"
    DataClass       = "financial"
  }
}
