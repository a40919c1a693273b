# The spec's advanced example, deployed into the local AWS (scripts/local-aws, scripts/demo):
# four databases (one a read replica, one unencrypted), copies to a second region, copies into a vault
# account, exports to S3, SNS and Slack. Only the provider knows about the emulator; the module is used exactly as in AWS.
# Polls every 5 s (the smallest the module allows) because the emulator finishes snapshots,
# copies and exports at once.

provider "aws" {
  region     = "us-east-1"
  access_key = "test"
  secret_key = "test"

  skip_credentials_validation = true
  skip_metadata_api_check     = true
  s3_use_path_style           = true

  endpoints {
    cloudwatch     = var.local_aws_endpoint
    cloudwatchlogs = var.local_aws_endpoint
    ec2            = var.local_aws_endpoint
    events         = var.local_aws_endpoint
    iam            = var.local_aws_endpoint
    kms            = var.local_aws_endpoint
    lambda         = var.local_aws_endpoint
    rds            = var.local_aws_endpoint
    s3             = var.local_aws_endpoint
    secretsmanager = var.local_aws_endpoint
    sfn            = var.local_aws_endpoint
    sns            = var.local_aws_endpoint
    sqs            = var.local_aws_endpoint
    sts            = var.local_aws_endpoint
  }
}

# The vault account: a second account of the local AWS, whose administrator's access key is its
# id (docs/local-aws.md, "Accounts"), as a profile of that account would be on AWS.
provider "aws" {
  alias      = "vault"
  region     = "us-east-1"
  access_key = var.vault_account_id
  secret_key = "test"

  skip_credentials_validation = true
  skip_metadata_api_check     = true

  endpoints {
    cloudwatch     = var.local_aws_endpoint
    cloudwatchlogs = var.local_aws_endpoint
    ec2            = var.local_aws_endpoint
    events         = var.local_aws_endpoint
    iam            = var.local_aws_endpoint
    kms            = var.local_aws_endpoint
    lambda         = var.local_aws_endpoint
    rds            = var.local_aws_endpoint
    s3             = var.local_aws_endpoint
    secretsmanager = var.local_aws_endpoint
    sfn            = var.local_aws_endpoint
    sns            = var.local_aws_endpoint
    sqs            = var.local_aws_endpoint
    sts            = var.local_aws_endpoint
  }
}

data "aws_caller_identity" "source" {}

# The vault side, applied in the vault account: its key, the one role the source may assume, and
# the vault's own retention (seven years of monthly copies) and watch (VaultSnapshotAge hourly).
module "vault" {
  source = "../../modules/vault"
  providers = {
    aws = aws.vault
  }

  name              = "nestedphoenix-production"
  source_account_id = data.aws_caller_identity.source.account_id
  source_region     = "us-east-1"
  source_prefix     = "nestedphoenix-production"
  source_managed_by = "nestedphoenix/production/us-east-1"
  external_id       = "nestedphoenix-production-vault"

  retention_policy = { daily = 7, monthly = 84 }
  databases        = ["prod-database-1", "prod-database-2", "prod-read-replica-1", "prod-database-3"]
}

module "database_backup" {
  source = "../.."

  project_name = "nestedphoenix"
  environment  = "production"

  rds_instance_ids = [
    "prod-database-1",
    "prod-database-2",
    "prod-read-replica-1",
    # Unencrypted: the vault copies it encrypted (the other three: under aws/rds, and under
    # the DBA team's key).
    "prod-database-3",
  ]

  backup_retention_days = 30
  min_snapshots_to_keep = 3
  backup_schedule       = "cron(0 2 * * ? *)" # Daily at 2 AM

  enable_cross_region_copy = true
  cross_region_destination = var.copy_region
  enable_s3_export         = true
  # A demo: destroy removes the exports and access logs the emulator writes too, and
  # schedules the module's key for deletion.
  s3_force_destroy            = true
  kms_key_deletion_protection = false

  # Polls and wait bounds are the module's defaults: the local AWS runs on a clock
  # (scripts/demo runs it ten simulated minutes a second), so snapshots, copies and
  # exports take as long as the local AWS's model says, and the waits poll for them.

  # Every snapshot is also copied into the vault account, out of this account's reach.
  vault = {
    account_id  = module.vault.account_id
    region      = module.vault.region
    kms_key_arn = module.vault.kms_key_arn
    role_arn    = module.vault.role_arn
    external_id = "nestedphoenix-production-vault"
  }

  # Every Sunday one database's newest backup is restored, checked and deleted, and the
  # recovery time measured against a 30-minute target (scripts/demo runs one drill now).
  restore_drill = {
    databases    = ["prod-database-1", "prod-database-2"]
    random_count = 1
    rto_minutes  = 30
    # Each drilled database is also queried, read-only, as dbadmin: prod-database-1 over
    # PostgreSQL's protocol, prod-database-2 over MySQL's (one query that both answer).
    sql_probe = {
      secret_arns = {
        "prod-database-1" = aws_secretsmanager_secret.drill_probe.arn
        "prod-database-2" = aws_secretsmanager_secret.drill_probe.arn
      }
      subnet_ids         = [aws_subnet.drill_probe.id]
      security_group_ids = [aws_security_group.drill_probe.id]
      query              = "SELECT version()"
    }
  }

  notification_email = "dba-team@company.com"
  slack_webhook_url  = var.slack_webhook_url

  additional_tags = {
    Team = "dba"
  }
}

# An inbox for the run summaries: a queue subscribed to the module's topic, as a chat or
# ticketing integration would be. The demo reads the SNS messages from it.
resource "aws_sqs_queue" "notification_inbox" {
  # checkov:skip=CKV2_AWS_73: a demo inbox in the local AWS; it holds run summaries, no secrets
  name                    = "nestedphoenix-production-notification-inbox"
  sqs_managed_sse_enabled = true
}

resource "aws_sqs_queue_policy" "notification_inbox" {
  queue_url = aws_sqs_queue.notification_inbox.id
  policy    = data.aws_iam_policy_document.notification_inbox.json
}

data "aws_iam_policy_document" "notification_inbox" {
  statement {
    sid       = "TheBackupTopicDelivers"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.notification_inbox.arn]
    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }
    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [module.database_backup.sns_topic_arn]
    }
  }
}

resource "aws_sns_topic_subscription" "notification_inbox" {
  topic_arn            = module.database_backup.sns_topic_arn
  protocol             = "sqs"
  endpoint             = aws_sqs_queue.notification_inbox.arn
  raw_message_delivery = false
}

# The drills' SQL probe: the credentials it logs in with (the demo's databases' master user,
# which a restored copy keeps), and the network it runs in. On AWS: your VPC's private subnets,
# with a route to Secrets Manager, and the drill databases' security group letting this one in
# on 5432 (PostgreSQL) and 3306 (MySQL) (the local AWS does not filter by security group).
resource "aws_secretsmanager_secret" "drill_probe" {
  # checkov:skip=CKV_AWS_149: the local example keeps Secrets Manager's own key; use a customer managed key (and sql_probe.secret_kms_key_arns) on AWS
  # checkov:skip=CKV2_AWS_57: a restored copy has the snapshot's password: rotation is the source database's, not this example's
  name                    = "nestedphoenix-production-drill-probe"
  recovery_window_in_days = 0
}

resource "aws_secretsmanager_secret_version" "drill_probe" {
  secret_id     = aws_secretsmanager_secret.drill_probe.id
  secret_string = jsonencode({ username = "dbadmin", password = var.database_password })
}

resource "aws_vpc" "drill_probe" {
  # checkov:skip=CKV2_AWS_11: the local example's VPC holds the probe only; flow logs are the caller's choice
  # checkov:skip=CKV2_AWS_12: the local example's VPC holds the probe only, in its own security group
  cidr_block = "10.40.0.0/16"
}

resource "aws_subnet" "drill_probe" {
  vpc_id     = aws_vpc.drill_probe.id
  cidr_block = "10.40.1.0/24"
}

resource "aws_security_group" "drill_probe" {
  name        = "nestedphoenix-production-drill-probe"
  description = "The drill probe: out to the drill databases on 5432 and 3306 and to Secrets Manager on 443"
  vpc_id      = aws_vpc.drill_probe.id

  egress {
    description = "PostgreSQL, to the drill databases"
    from_port   = 5432
    to_port     = 5432
    protocol    = "tcp"
    cidr_blocks = [aws_vpc.drill_probe.cidr_block]
  }

  egress {
    description = "MySQL, to the drill databases"
    from_port   = 3306
    to_port     = 3306
    protocol    = "tcp"
    cidr_blocks = [aws_vpc.drill_probe.cidr_block]
  }

  egress {
    description = "HTTPS, to the Secrets Manager interface endpoint"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = [aws_vpc.drill_probe.cidr_block]
  }
}
