# Every validated variable refuses a bad value at `terraform plan`: one run per
# case, each expecting the validation of the variable that refuses it to fail.
# `# expect:` quotes that variable's message for the case; the Terraform suite
# (tests/terraform/test_refusals.py) checks that each quote is one of its
# messages, that each message names its variable, and that every validated
# variable has a case here, and plans the cases several to a run (see
# docs/testing.md): keep each run to `command`, one `# expect:`, one `variables`
# block and one expected failure, or it runs alone.
#   scripts/build-lambdas && cd terraform && terraform init && terraform test
# The provider is mocked: nothing here needs AWS or its credentials (the plan
# reads the built zips, as every plan of the module does).

# The plan goes on past a refused variable: the data sources it reads get plausible values.
mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_region" {
    defaults = { id = "us-east-1" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  # The zips' checksums a lambda_s3_bucket case reads: every function listed.
  mock_data "aws_s3_object" {
    defaults = { body = "0000000000000000000000000000000000000000000000000000000000000000  backup-copy/bootstrap.zip\n0000000000000000000000000000000000000000000000000000000000000000  backup-export/bootstrap.zip\n0000000000000000000000000000000000000000000000000000000000000000  backup-notify/bootstrap.zip\n0000000000000000000000000000000000000000000000000000000000000000  backup-prune/bootstrap.zip\n0000000000000000000000000000000000000000000000000000000000000000  backup-select/bootstrap.zip\n0000000000000000000000000000000000000000000000000000000000000000  backup-snapshot/bootstrap.zip\n0000000000000000000000000000000000000000000000000000000000000000  backup-vault/bootstrap.zip\n0000000000000000000000000000000000000000000000000000000000000000  backup-wait-for-available/bootstrap.zip\n" }
  }
  mock_data "aws_default_tags" {
    defaults = { tags = {} }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
}

# A valid caller, which each run changes in one place.
variables {
  project_name     = "checks"
  environment      = "test"
  rds_instance_ids = ["db-one"]
}

run "project_name" {
  command = plan
  # expect: project_name must be 2-24 lowercase letters
  variables {
    project_name = "Bad_Name"
  }
  expect_failures = [var.project_name]
}

run "environment" {
  command = plan
  # expect: environment must be 2-16 lowercase letters
  variables {
    environment = "Prod!"
  }
  expect_failures = [var.environment]
}

run "project_tag_key" {
  command = plan
  # expect: project_tag_key must be a tag key of 1-128 letters
  variables {
    project_tag_key = "aws:project"
  }
  expect_failures = [var.project_tag_key]
}

run "environment_tag_key" {
  command = plan
  # expect: environment_tag_key must be a tag key of 1-128 letters
  variables {
    project_tag_key     = "Owner-Project"
    environment_tag_key = "Owner-Project"
  }
  expect_failures = [var.environment_tag_key]
}

run "adopt_snapshots_managed_by" {
  command = plan
  # expect: adopt_snapshots_managed_by holds RDS tag values
  variables {
    adopt_snapshots_managed_by = ["nestedphoenix-production", "not;a;tag;value"]
  }
  expect_failures = [var.adopt_snapshots_managed_by]
}

run "s3_bucket_name_too_long_for_its_log_bucket" {
  command = plan
  # expect: s3_bucket_name is too long for its access-log bucket
  variables {
    s3_bucket_name = "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefgh"
  }
  expect_failures = [var.s3_bucket_name]
}

run "project_and_environment_too_long_for_the_role_names" {
  command = plan
  # expect: iam_role_name_prefix, project_name and environment are too long for the role names
  variables {
    project_name = "abcdefghijklmnopqrstuvwx"
    environment  = "abcdefghijklmnop"
  }
  expect_failures = [var.iam_role_name_prefix]
}

run "rds_instance_ids_1" {
  command = plan
  # expect: Each rds_instance_ids entry must be an RDS identifier
  variables {
    rds_instance_ids = ["1db"]
  }
  expect_failures = [var.rds_instance_ids]
}

run "rds_instance_ids_2" {
  command = plan
  # expect: rds_instance_ids lists a database twice
  variables {
    rds_instance_ids = ["db-a", "DB-A"]
  }
  expect_failures = [var.rds_instance_ids]
}

run "rds_instance_ids_3" {
  command = plan
  # expect: name at least one database, or select them by tag or pattern
  variables {
    rds_instance_ids = []
  }
  expect_failures = [var.rds_instance_ids]
}

run "selection_tags" {
  command = plan
  # expect: selection_tags must be RDS tags
  variables {
    selection_tags = { "aws:cloudformation:stack-name" = "x" }
  }
  expect_failures = [var.selection_tags]
}

run "exclude_tags_1" {
  command = plan
  # expect: exclude_tags must be RDS tags
  variables {
    selection_tags = { backup = "daily" }
    exclude_tags   = { "" = "x" }
  }
  expect_failures = [var.exclude_tags]
}

run "exclude_tags_2" {
  command = plan
  # expect: exclude_tags leaves out databases that selection_tags or db_identifier_patterns select, and neither is set
  variables {
    exclude_tags = { "backup-skip" = "*" }
  }
  expect_failures = [var.exclude_tags]
}

run "db_identifier_patterns" {
  command = plan
  # expect: Each db_identifier_patterns entry must be a non-empty regular expression
  variables {
    db_identifier_patterns = ["prod-("]
  }
  expect_failures = [var.db_identifier_patterns]
}

run "backup_retention_days_1" {
  command = plan
  # expect: backup_retention_days must be a whole number of days from 1 to 36500
  variables {
    backup_retention_days = 0
  }
  expect_failures = [var.backup_retention_days]
}

run "backup_retention_days_2" {
  command = plan
  # expect: the S3 exports would expire before the snapshots they archive
  variables {
    backup_retention_days = 3000
  }
  expect_failures = [var.backup_retention_days]
}

run "backup_schedule_1" {
  command = plan
  # expect: backup_schedule must be an EventBridge schedule expression
  variables {
    backup_schedule = "daily at 2"
  }
  expect_failures = [var.backup_schedule]
}

run "backup_schedule_2" {
  command = plan
  # expect: backup_schedule must be an EventBridge schedule expression
  variables {
    backup_schedule = "rate(1 days)"
  }
  expect_failures = [var.backup_schedule]
}

run "enable_cross_region_copy" {
  command = plan
  # expect: enable_cross_region_copy is true but cross_region_destination is not set
  variables {
    enable_cross_region_copy = true
  }
  expect_failures = [var.enable_cross_region_copy]
}

run "cross_region_destination" {
  command = plan
  # expect: cross_region_destination must be an AWS region name
  variables {
    cross_region_destination = "uswest2"
  }
  expect_failures = [var.cross_region_destination]
}

run "backup_window_1" {
  command = plan
  # expect: backup_window must be hh24:mi-hh24:mi in UTC
  variables {
    backup_window = "2am-3am"
  }
  expect_failures = [var.backup_window]
}

run "backup_window_2" {
  command = plan
  # expect: backup_window must be at least 30 minutes long
  variables {
    backup_window = "02:00-02:10"
  }
  expect_failures = [var.backup_window]
}

run "s3_bucket_name_1" {
  command = plan
  # expect: s3_bucket_name must be a valid S3 bucket name
  variables {
    s3_bucket_name = "Bad_Bucket"
  }
  expect_failures = [var.s3_bucket_name]
}

run "s3_bucket_name_reserved_suffix" {
  command = plan
  # expect: uses a prefix or suffix S3 reserves
  variables {
    s3_bucket_name = "backups--use1-az4--x-s3"
  }
  expect_failures = [var.s3_bucket_name]
}

run "s3_bucket_name_reserved_prefix" {
  command = plan
  # expect: uses a prefix or suffix S3 reserves
  variables {
    s3_bucket_name = "sthree-backups"
  }
  expect_failures = [var.s3_bucket_name]
}

run "s3_bucket_name_2" {
  command = plan
  # expect: s3_bucket_name must be a valid S3 bucket name
  variables {
    s3_bucket_name = "10.0.0.1"
  }
  expect_failures = [var.s3_bucket_name]
}

run "s3_storage_class" {
  command = plan
  # expect: s3_storage_class must be one of
  variables {
    s3_storage_class = "GLACIER"
  }
  expect_failures = [var.s3_storage_class]
}

run "s3_lifecycle_rules_1" {
  command = plan
  # expect: transition_to_ia_days must be at least 30
  variables {
    s3_lifecycle_rules = { transition_to_ia_days = 10 }
  }
  expect_failures = [var.s3_lifecycle_rules]
}

run "s3_lifecycle_rules_2" {
  command = plan
  # expect: s3_lifecycle_rules days must increase in order
  variables {
    s3_lifecycle_rules = { transition_to_glacier_days = 40 }
  }
  expect_failures = [var.s3_lifecycle_rules]
}

run "s3_lifecycle_rules_3" {
  command = plan
  # expect: must be null or a whole number of days
  variables {
    s3_lifecycle_rules = { expiration_days = 1.5 }
  }
  expect_failures = [var.s3_lifecycle_rules]
}

run "lambda_timeout" {
  command = plan
  # expect: lambda_timeout must be a whole number of seconds from 30 to 900
  variables {
    lambda_timeout = 1000
  }
  expect_failures = [var.lambda_timeout]
}

run "lambda_memory_size" {
  command = plan
  # expect: lambda_memory_size must be a whole number of MB from 128 to 10240
  variables {
    lambda_memory_size = 64
  }
  expect_failures = [var.lambda_memory_size]
}

run "lambda_runtime" {
  command = plan
  # expect: lambda_runtime must be a Lambda runtime name
  variables {
    lambda_runtime = "cobol"
  }
  expect_failures = [var.lambda_runtime]
}

run "lambda_reserved_concurrency" {
  command = plan
  # expect: lambda_reserved_concurrency must be -1 (unreserved)
  variables {
    lambda_reserved_concurrency = 0
  }
  expect_failures = [var.lambda_reserved_concurrency]
}

run "log_retention_days" {
  command = plan
  # expect: log_retention_days must be a value CloudWatch Logs accepts
  variables {
    log_retention_days = 10
  }
  expect_failures = [var.log_retention_days]
}

run "notification_email" {
  command = plan
  # expect: notification_email must be an email address
  variables {
    notification_email = "dba-team"
  }
  expect_failures = [var.notification_email]
}

run "slack_webhook_url" {
  command = plan
  # expect: slack_webhook_url must be an https:// URL
  variables {
    slack_webhook_url = "http://hooks.slack.com/services/x"
  }
  expect_failures = [var.slack_webhook_url]
}

run "sns_topic_arn" {
  command = plan
  # expect: sns_topic_arn must be an SNS topic ARN
  variables {
    sns_topic_arn = "alerts"
  }
  expect_failures = [var.sns_topic_arn]
}

run "kms_key_id" {
  command = plan
  # expect: kms_key_id must be a KMS key id, key ARN
  variables {
    kms_key_id = "my key"
  }
  expect_failures = [var.kms_key_id]
}

run "vpc_id" {
  command = plan
  # expect: vpc_id must be a VPC id
  variables {
    vpc_id = "vpc1"
  }
  expect_failures = [var.vpc_id]
}

run "subnet_ids_1" {
  command = plan
  # expect: vpc_id is set but subnet_ids is empty
  variables {
    vpc_id = "vpc-0abc1234def567890"
  }
  expect_failures = [var.subnet_ids]
}

run "subnet_ids_2" {
  command = plan
  # expect: Each subnet_ids entry must be a subnet id
  variables {
    subnet_ids = ["sub-1"]
  }
  expect_failures = [var.subnet_ids]
}

run "enable_vpc_endpoints" {
  command = plan
  # expect: enable_vpc_endpoints is true but vpc_id is not set
  variables {
    enable_vpc_endpoints = true
  }
  expect_failures = [var.enable_vpc_endpoints]
}

run "existing_vpc_endpoint_services_1" {
  command = plan
  # expect: existing_vpc_endpoint_services may hold only rds, sns, monitoring, logs, states, kms, sts, sqs, scheduler and s3
  variables {
    vpc_id                         = "vpc-0abc1234def567890"
    subnet_ids                     = ["subnet-0abc1234def567890"]
    enable_vpc_endpoints           = true
    existing_vpc_endpoint_services = ["rds", "ec2"]
  }
  expect_failures = [var.existing_vpc_endpoint_services]
}

run "existing_vpc_endpoint_services_2" {
  command = plan
  # expect: existing_vpc_endpoint_services is set but enable_vpc_endpoints is false
  variables {
    vpc_id                         = "vpc-0abc1234def567890"
    subnet_ids                     = ["subnet-0abc1234def567890"]
    existing_vpc_endpoint_services = ["s3"]
  }
  expect_failures = [var.existing_vpc_endpoint_services]
}

run "vpc_endpoint_security_group_ids_1" {
  command = plan
  # expect: Each vpc_endpoint_security_group_ids entry must be a security group id
  variables {
    vpc_id                          = "vpc-0abc1234def567890"
    subnet_ids                      = ["subnet-0abc1234def567890"]
    enable_vpc_endpoints            = true
    vpc_endpoint_security_group_ids = ["endpoints"]
  }
  expect_failures = [var.vpc_endpoint_security_group_ids]
}

run "vpc_endpoint_security_group_ids_2" {
  command = plan
  # expect: vpc_endpoint_security_group_ids is set but enable_vpc_endpoints is false
  variables {
    vpc_id                          = "vpc-0abc1234def567890"
    subnet_ids                      = ["subnet-0abc1234def567890"]
    vpc_endpoint_security_group_ids = ["sg-0abc1234def567890"]
  }
  expect_failures = [var.vpc_endpoint_security_group_ids]
}

run "lambda_security_group_ids_1" {
  command = plan
  # expect: Each lambda_security_group_ids entry must be a security group id
  variables {
    vpc_id                    = "vpc-0abc1234def567890"
    subnet_ids                = ["subnet-0abc1234def567890"]
    lambda_security_group_ids = ["sg-1"]
  }
  expect_failures = [var.lambda_security_group_ids]
}

run "lambda_security_group_ids_2" {
  command = plan
  # expect: lambda_security_group_ids is set but vpc_id is not
  variables {
    lambda_security_group_ids = ["sg-0abc1234def567890"]
  }
  expect_failures = [var.lambda_security_group_ids]
}

run "additional_tags_1" {
  command = plan
  # expect: additional_tags keys must be 1-128 characters
  variables {
    additional_tags = { "aws:owner" = "x" }
  }
  expect_failures = [var.additional_tags]
}

run "additional_tags_2" {
  command = plan
  # expect: additional_tags may hold at most 43 tags
  variables {
    additional_tags = { k0 = "v", k1 = "v", k2 = "v", k3 = "v", k4 = "v", k5 = "v", k6 = "v", k7 = "v", k8 = "v", k9 = "v", k10 = "v", k11 = "v", k12 = "v", k13 = "v", k14 = "v", k15 = "v", k16 = "v", k17 = "v", k18 = "v", k19 = "v", k20 = "v", k21 = "v", k22 = "v", k23 = "v", k24 = "v", k25 = "v", k26 = "v", k27 = "v", k28 = "v", k29 = "v", k30 = "v", k31 = "v", k32 = "v", k33 = "v", k34 = "v", k35 = "v", k36 = "v", k37 = "v", k38 = "v", k39 = "v", k40 = "v", k41 = "v", k42 = "v", k43 = "v", k44 = "v" }
  }
  expect_failures = [var.additional_tags]
}

run "rds_cluster_ids" {
  command = plan
  # expect: Each rds_cluster_ids entry must be an RDS identifier
  variables {
    rds_cluster_ids = ["bad--id"]
  }
  expect_failures = [var.rds_cluster_ids]
}

run "min_snapshots_to_keep" {
  command = plan
  # expect: min_snapshots_to_keep must be a whole number from 1 to 1000
  variables {
    min_snapshots_to_keep = 0
  }
  expect_failures = [var.min_snapshots_to_keep]
}

run "retention_policy" {
  command = plan
  # expect: retention_policy may only count daily, weekly, monthly and yearly snapshots
  variables {
    retention_policy = { dayly = 7, monthly = 12 }
  }
  expect_failures = [var.retention_policy]
}

run "retention_policy_negative" {
  command = plan
  # expect: retention_policy counts must be whole numbers, 0 or more
  variables {
    retention_policy = { daily = -7 }
  }
  expect_failures = [var.retention_policy]
}

run "copy_retention_policy" {
  command = plan
  # expect: copy_retention_policy keeps nothing
  variables {
    copy_retention_policy = { daily = 0, yearly = 0 }
  }
  expect_failures = [var.copy_retention_policy]
}

run "copy_retention_policy_century" {
  command = plan
  # expect: copy_retention_policy keeps more than a century
  variables {
    copy_retention_policy = { yearly = 101 }
  }
  expect_failures = [var.copy_retention_policy]
}

run "s3_export_tiers" {
  command = plan
  # expect: s3_export_tiers may only name daily, weekly, monthly and yearly
  variables {
    s3_export_tiers = ["monthly", "quarterly"]
  }
  expect_failures = [var.s3_export_tiers]
}

run "prune_guard_fraction" {
  command = plan
  # expect: prune_guard_fraction must be above 0 and at most 1
  variables {
    prune_guard_fraction = 0
  }
  expect_failures = [var.prune_guard_fraction]
}

run "max_concurrent_databases" {
  command = plan
  # expect: max_concurrent_databases must be a whole number from 1 to 40
  variables {
    max_concurrent_databases = 41
  }
  expect_failures = [var.max_concurrent_databases]
}

run "poll_interval_seconds" {
  command = plan
  # expect: poll_interval_seconds must be a whole number from 5 to 3600
  variables {
    poll_interval_seconds = 1
  }
  expect_failures = [var.poll_interval_seconds]
}

run "export_poll_interval_seconds" {
  command = plan
  # expect: export_poll_interval_seconds must be a whole number from 5 to 3600
  variables {
    export_poll_interval_seconds = 0
  }
  expect_failures = [var.export_poll_interval_seconds]
}

run "wait_timeout_seconds" {
  command = plan
  # expect: wait_timeout_seconds values must be whole numbers of seconds
  variables {
    wait_timeout_seconds = { snapshot = 10 }
  }
  expect_failures = [var.wait_timeout_seconds]
}

run "cross_region_kms_key_arn_1" {
  command = plan
  # expect: cross_region_kms_key_arn must be a KMS key or alias ARN
  variables {
    cross_region_kms_key_arn = "key"
  }
  expect_failures = [var.cross_region_kms_key_arn]
}

run "cross_region_kms_key_arn_2" {
  command = plan
  # expect: cross_region_kms_key_arn must be a key in cross_region_destination
  variables {
    cross_region_destination = "us-west-2"
    cross_region_kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
  }
  expect_failures = [var.cross_region_kms_key_arn]
}

run "cross_region_option_groups" {
  command = plan
  # expect: Each cross_region_option_groups name must be an RDS option group name
  variables {
    cross_region_option_groups = { "ledger-oracle-tde" = "ledger--west" }
  }
  expect_failures = [var.cross_region_option_groups]
}

run "lambda_s3_bucket" {
  command = plan
  # expect: lambda_s3_bucket must be an S3 bucket name
  variables {
    lambda_s3_bucket = "Artifacts_Bucket"
  }
  expect_failures = [var.lambda_s3_bucket]
}

run "lambda_s3_bucket_and_package_dir" {
  command = plan
  # expect: lambda_s3_bucket and lambda_package_dir both name where the zips are: set one of them.
  variables {
    lambda_s3_bucket   = "artifacts"
    lambda_package_dir = "/opt/database-backup/lambda"
  }
  expect_failures = [var.lambda_s3_bucket]
}

run "lambda_s3_key_prefix" {
  command = plan
  # expect: lambda_s3_key_prefix must be empty or end in / and not start with one
  variables {
    lambda_s3_key_prefix = "database-backup/1.0.0"
  }
  expect_failures = [var.lambda_s3_key_prefix]
}

run "create_kms_key" {
  command = plan
  # expect: create_kms_key = false uses your key: set kms_key_id.
  variables {
    create_kms_key = false
  }
  expect_failures = [var.create_kms_key]
}

run "create_sns_topic" {
  command = plan
  # expect: create_sns_topic = true creates the module's topic: leave sns_topic_arn null
  variables {
    create_sns_topic = true
    sns_topic_arn    = "arn:aws:sns:us-east-1:123456789012:alerts"
  }
  expect_failures = [var.create_sns_topic]
}

run "sns_topic_kms_key_arn" {
  command = plan
  # expect: sns_topic_kms_key_arn must be a KMS key ARN
  variables {
    sns_topic_arn         = "arn:aws:sns:us-east-1:123456789012:alerts"
    sns_topic_kms_key_arn = "alias/alerts"
  }
  expect_failures = [var.sns_topic_kms_key_arn]
}

run "sns_topic_kms_key_arn_without_a_topic" {
  command = plan
  # expect: sns_topic_kms_key_arn is the key of a topic you bring: set sns_topic_arn too
  variables {
    sns_topic_kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
  }
  expect_failures = [var.sns_topic_kms_key_arn]
}

run "iam_permissions_boundary_arn" {
  command = plan
  # expect: iam_permissions_boundary_arn must be an IAM policy ARN
  variables {
    iam_permissions_boundary_arn = "platform-boundary"
  }
  expect_failures = [var.iam_permissions_boundary_arn]
}

run "iam_role_path" {
  command = plan
  # expect: iam_role_path must start and end with /
  variables {
    iam_role_path = "backup"
  }
  expect_failures = [var.iam_role_path]
}

run "iam_role_name_prefix" {
  command = plan
  # expect: iam_role_name_prefix may hold only letters, digits and + = , . @ _ - (IAM role name characters).
  variables {
    iam_role_name_prefix = "app/"
  }
  expect_failures = [var.iam_role_name_prefix]
}

run "iam_role_name_prefix_too_long" {
  command = plan
  # expect: iam_role_name_prefix, project_name and environment are too long for the role names
  variables {
    iam_role_name_prefix = "organisation-required-role-prefix-for-all-"
  }
  expect_failures = [var.iam_role_name_prefix]
}

run "log_group_class" {
  command = plan
  # expect: log_group_class must be STANDARD or INFREQUENT_ACCESS.
  variables {
    log_group_class = "DELIVERY"
  }
  expect_failures = [var.log_group_class]
}

run "state_machine_log_level" {
  command = plan
  # expect: state_machine_log_level must be ALL, ERROR, FATAL or OFF.
  variables {
    state_machine_log_level = "DEBUG"
  }
  expect_failures = [var.state_machine_log_level]
}

run "alarm_sns_topic_arn" {
  command = plan
  # expect: alarm_sns_topic_arn must be an SNS topic ARN
  variables {
    alarm_sns_topic_arn = "arn:aws:sns:us-east-1:123456789012:pager.fifo"
  }
  expect_failures = [var.alarm_sns_topic_arn]
}

run "lambda_architecture" {
  command = plan
  # expect: lambda_architecture must be x86_64 or arm64
  variables {
    lambda_architecture = "ppc64"
  }
  expect_failures = [var.lambda_architecture]
}

run "metrics_namespace" {
  command = plan
  # expect: metrics_namespace must be 1-255
  variables {
    metrics_namespace = "AWS/RDS"
  }
  expect_failures = [var.metrics_namespace]
}

run "snapshot_age_alarm_hours" {
  command = plan
  # expect: snapshot_age_alarm_hours must be at least 1
  variables {
    snapshot_age_alarm_hours = 0
  }
  expect_failures = [var.snapshot_age_alarm_hours]
}

run "restorable_lag_alarm_minutes" {
  command = plan
  # expect: restorable_lag_alarm_minutes must be between 10
  variables {
    restorable_lag_alarm_minutes = 5
  }
  expect_failures = [var.restorable_lag_alarm_minutes]
}

run "manage_automated_backups_retention_days" {
  command = plan
  # expect: manage_automated_backups.retention_days must be a whole number of days from 1 to 35
  variables {
    manage_automated_backups = { retention_days = 0 }
  }
  expect_failures = [var.manage_automated_backups]
}

run "manage_automated_backups_retention_days_over_35" {
  command = plan
  # expect: manage_automated_backups.retention_days must be a whole number of days from 1 to 35
  variables {
    manage_automated_backups = { retention_days = 36 }
  }
  expect_failures = [var.manage_automated_backups]
}

run "manage_automated_backups_with_patterns_alone" {
  command = plan
  # expect: manage_automated_backups with db_identifier_patterns needs selection_tags too
  variables {
    db_identifier_patterns   = ["^orders-"]
    manage_automated_backups = { retention_days = 7 }
  }
  expect_failures = [var.manage_automated_backups]
}

run "vault_account_id" {
  command = plan
  # expect: vault.account_id must be an AWS account id
  variables {
    vault = { account_id = "1111", kms_key_arn = "arn:aws:kms:us-east-1:1111:key/x", role_arn = "arn:aws:iam::1111:role/x" }
  }
  expect_failures = [var.vault]
}

run "vault_region" {
  command = plan
  # expect: vault.region must be an AWS region name
  variables {
    vault = { account_id = "111111111111", kms_key_arn = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab", role_arn = "arn:aws:iam::111111111111:role/checks-test-vault-copier", region = "Ireland" }
  }
  expect_failures = [var.vault]
}

run "vault_role_arn" {
  command = plan
  # expect: vault.role_arn must be a role of the vault account
  variables {
    vault = { account_id = "111111111111", kms_key_arn = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab", role_arn = "arn:aws:iam::222222222222:role/copier" }
  }
  expect_failures = [var.vault]
}

run "vault_kms_key_arn" {
  command = plan
  # expect: vault.kms_key_arn must be a key ARN of the vault account
  variables {
    vault = { account_id = "111111111111", kms_key_arn = "arn:aws:kms:us-east-1:111111111111:alias/aws/rds", role_arn = "arn:aws:iam::111111111111:role/checks-test-vault-copier" }
  }
  expect_failures = [var.vault]
}

run "vault_cluster_share_kms_key_arn" {
  command = plan
  # expect: vault.cluster_share_kms_key_arn must be a key ARN of this (the source) account in vault.region
  variables {
    vault = { account_id = "111111111111", region = "eu-west-1", kms_key_arn = "arn:aws:kms:eu-west-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab", role_arn = "arn:aws:iam::111111111111:role/checks-test-vault-copier", cluster_share_kms_key_arn = "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab" }
  }
  expect_failures = [var.vault]
}

run "vault_drill_role_arn" {
  command = plan
  # expect: vault.drill_role_arn must be a role of the vault account
  variables {
    vault = { account_id = "111111111111", kms_key_arn = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab", role_arn = "arn:aws:iam::111111111111:role/checks-test-vault-copier", drill_role_arn = "arn:aws:iam::222222222222:role/checks-test-vault-drill" }
  }
  expect_failures = [var.vault]
}

run "vault_drill_role_arn_name" {
  command = plan
  # expect: vault.drill_role_arn must be a role of the vault account
  variables {
    vault = { account_id = "111111111111", kms_key_arn = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab", role_arn = "arn:aws:iam::111111111111:role/checks-test-vault-copier", drill_role_arn = "checks-test-vault-drill" }
  }
  expect_failures = [var.vault]
}

run "restore_drill_copy_vault_without_instance_class" {
  command = plan
  # expect: needs vault.drill_role_arn (apply modules/vault with allow_restore_drills
  variables {
    restore_drill = { copy = "vault" }
    vault         = { account_id = "111111111111", kms_key_arn = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab", role_arn = "arn:aws:iam::111111111111:role/checks-test-vault-copier", drill_role_arn = "arn:aws:iam::111111111111:role/checks-test-vault-drill" }
  }
  expect_failures = [var.restore_drill]
}

run "vault_external_id" {
  command = plan
  # expect: vault.external_id must be 2-1224 letters
  variables {
    vault = { account_id = "111111111111", kms_key_arn = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab", role_arn = "arn:aws:iam::111111111111:role/checks-test-vault-copier", external_id = "not allowed!" }
  }
  expect_failures = [var.vault]
}

run "restore_drill_copy_other" {
  command = plan
  # expect: restore_drill.copy must be
  variables {
    restore_drill = { copy = "replica" }
  }
  expect_failures = [var.restore_drill]
}

run "restore_drill_copy_vault_without_its_drill_role" {
  command = plan
  # expect: needs vault.drill_role_arn (apply modules/vault with allow_restore_drills
  variables {
    restore_drill = { copy = "vault", instance_class = "db.t4g.micro" }
    vault         = { account_id = "111111111111", kms_key_arn = "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab", role_arn = "arn:aws:iam::111111111111:role/checks-test-vault-copier" }
  }
  expect_failures = [var.restore_drill]
}

run "restore_drill_copy_without_copies_or_class" {
  command = plan
  # expect: needs enable_cross_region_copy, and restore_drill.instance_class
  variables {
    restore_drill = { copy = "copy" }
  }
  expect_failures = [var.restore_drill]
}

run "restore_drill_rto_zero" {
  command = plan
  # expect: restore_drill needs whole numbers: random_count 0 or more, rto_minutes from 1 to 10080
  variables {
    restore_drill = { rto_minutes = 0 }
  }
  expect_failures = [var.restore_drill]
}

run "restore_drill_schedule" {
  command = plan
  # expect: restore_drill.schedule must be an EventBridge schedule expression
  variables {
    restore_drill = { schedule = "weekly" }
  }
  expect_failures = [var.restore_drill]
}

run "restore_drill_security_group" {
  command = plan
  # expect: restore_drill.security_group_ids must be VPC security group ids
  variables {
    restore_drill = { security_group_ids = ["default"] }
  }
  expect_failures = [var.restore_drill]
}

run "restore_drill_sql_probe_outside_the_source_region" {
  command = plan
  # expect: the probe function runs in the module's region and account
  variables {
    enable_cross_region_copy = true
    cross_region_destination = "us-west-2"
    restore_drill            = { copy = "copy", instance_class = "db.t4g.micro", sql_probe = { secret_arns = { db = "arn:aws:secretsmanager:us-east-1:123456789012:secret:drill-reader" }, subnet_ids = ["subnet-0123456789abcdef0"], security_group_ids = ["sg-0123456789abcdef0"] } }
  }
  expect_failures = [var.restore_drill]
}

run "restore_drill_sql_probe_secret_arn" {
  command = plan
  # expect: restore_drill.sql_probe.secret_arns must map at least one database identifier to the ARN of a Secrets Manager secret
  variables {
    restore_drill = { sql_probe = { secret_arns = { db = "drill-reader" }, subnet_ids = ["subnet-0123456789abcdef0"], security_group_ids = ["sg-0123456789abcdef0"] } }
  }
  expect_failures = [var.restore_drill]
}

run "restore_drill_sql_probe_without_subnets" {
  command = plan
  # expect: restore_drill.sql_probe needs subnet_ids (subnet- and 8 or 17 hex digits, at least one) and security_group_ids
  variables {
    restore_drill = { sql_probe = { secret_arns = { db = "arn:aws:secretsmanager:us-east-1:123456789012:secret:drill-reader" }, subnet_ids = [], security_group_ids = ["sg-0123456789abcdef0"] } }
  }
  expect_failures = [var.restore_drill]
}

run "restore_drill_sql_probe_past_lambda_timeout" {
  command = plan
  # expect: lambda_timeout must be at least restore_drill.sql_probe.connect_timeout_seconds plus 90 seconds
  variables {
    lambda_timeout = 100
    restore_drill  = { sql_probe = { secret_arns = { db = "arn:aws:secretsmanager:us-east-1:123456789012:secret:drill-reader" }, subnet_ids = ["subnet-0123456789abcdef0"], security_group_ids = ["sg-0123456789abcdef0"], connect_timeout_seconds = 30 } }
  }
  expect_failures = [var.restore_drill]
}

run "restore_drill_sql_probe_timeout" {
  command = plan
  # expect: restore_drill.sql_probe needs a query of 1 to 1024 characters
  variables {
    restore_drill = { sql_probe = { secret_arns = { db = "arn:aws:secretsmanager:us-east-1:123456789012:secret:drill-reader" }, subnet_ids = ["subnet-0123456789abcdef0"], security_group_ids = ["sg-0123456789abcdef0"], connect_timeout_seconds = 0 } }
  }
  expect_failures = [var.restore_drill]
}
