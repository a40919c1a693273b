# The spec's basic example: two databases, daily at 02:00 UTC, 30 days, email on every run.
# Build the functions first (scripts/build-lambdas), then terraform init && terraform apply.

provider "aws" {
  region = var.aws_region
}

module "database_backup" {
  source = "../.."

  # Required Variables
  project_name = "nestedphoenix"
  environment  = "production"

  # Database Configuration
  rds_instance_ids = [
    "prod-database-1",
    "prod-database-2"
  ]

  # Backup Configuration
  backup_retention_days = 30
  backup_schedule       = "cron(0 2 * * ? *)" # Daily at 2 AM

  # Notification
  notification_email = "dba-team@company.com"
}
