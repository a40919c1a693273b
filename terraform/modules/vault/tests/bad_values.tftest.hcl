# Every validated variable of the vault module refuses a bad value at `terraform plan`: one
# run per case, each expecting the validation of the variable that refuses it to fail, as
# terraform/tests/bad_values.tftest.hcl does for the module (tests/terraform/test_refusals.py
# checks both files the same way).
#   scripts/build-lambdas && cd terraform/modules/vault && terraform init && terraform test
# The provider is mocked: nothing here needs AWS or its credentials.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "111111111111" }
  }
  mock_data "aws_region" {
    defaults = { id = "us-east-1" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
}

# A valid vault, which each run changes in one place.
variables {
  name              = "checks-test"
  source_account_id = "123456789012"
  source_region     = "us-east-1"
  source_prefix     = "checks-test"
  source_managed_by = "checks/test/us-east-1"
}

run "name" {
  command = plan
  # expect: name must be 1-40 letters
  variables {
    name = "a vault with spaces"
  }
  expect_failures = [var.name]
}

run "source_account_id" {
  command = plan
  # expect: source_account_id must be an AWS account id
  variables {
    source_account_id = "1234"
  }
  expect_failures = [var.source_account_id]
}

run "source_region" {
  command = plan
  # expect: source_region must be an AWS region name
  variables {
    source_region = "Virginia"
  }
  expect_failures = [var.source_region]
}

run "source_prefix" {
  command = plan
  # expect: source_prefix must be the source module's project_name-environment
  variables {
    source_prefix = "a prefix!"
  }
  expect_failures = [var.source_prefix]
}

run "external_id" {
  command = plan
  # expect: external_id must be 2-1224 letters
  variables {
    external_id = "x"
  }
  expect_failures = [var.external_id]
}

run "kms_key_deletion_window_days" {
  command = plan
  # expect: kms_key_deletion_window_days must be 7 to 30
  variables {
    kms_key_deletion_window_days = 3
  }
  expect_failures = [var.kms_key_deletion_window_days]
}

run "source_managed_by" {
  command = plan
  # expect: source_managed_by must be the source module's managed_by_tag_value
  variables {
    source_managed_by = "checks-test"
  }
  expect_failures = [var.source_managed_by]
}

run "source_managed_by_region" {
  command = plan
  # expect: must end with the source region
  variables {
    source_managed_by = "checks/test/eu-west-1"
  }
  expect_failures = [var.source_managed_by]
}

run "databases" {
  command = plan
  # expect: databases must be RDS identifiers
  variables {
    databases = ["prod_database"]
  }
  expect_failures = [var.databases]
}

run "retention_days" {
  command = plan
  # expect: retention_days must be a whole number of days from 1 to 36500
  variables {
    retention_days = 0
  }
  expect_failures = [var.retention_days]
}

run "retention_policy_tier" {
  command = plan
  # expect: retention_policy may only count daily, weekly, monthly and yearly copies
  variables {
    retention_policy = { hourly = 24 }
  }
  expect_failures = [var.retention_policy]
}

run "retention_policy_count" {
  command = plan
  # expect: retention_policy counts must be whole numbers
  variables {
    retention_policy = { monthly = 1.5 }
  }
  expect_failures = [var.retention_policy]
}

run "retention_policy_nothing" {
  command = plan
  # expect: retention_policy keeps nothing
  variables {
    retention_policy = { daily = 0 }
  }
  expect_failures = [var.retention_policy]
}

run "retention_policy_century" {
  command = plan
  # expect: retention_policy keeps more than a century
  variables {
    retention_policy = { yearly = 101 }
  }
  expect_failures = [var.retention_policy]
}

run "min_snapshots_to_keep" {
  command = plan
  # expect: min_snapshots_to_keep must be a whole number, at least 1
  variables {
    min_snapshots_to_keep = 0
  }
  expect_failures = [var.min_snapshots_to_keep]
}

run "prune_schedule" {
  command = plan
  # expect: prune_schedule must be an EventBridge schedule expression
  variables {
    prune_schedule = "daily"
  }
  expect_failures = [var.prune_schedule]
}

run "prune_guard_fraction" {
  command = plan
  # expect: prune_guard_fraction must be above 0 and at most 1
  variables {
    prune_guard_fraction = 0
  }
  expect_failures = [var.prune_guard_fraction]
}

run "no_recent_copy_alarm_hours" {
  command = plan
  # expect: no_recent_copy_alarm_hours must be a whole number of hours from 2 to 8760
  variables {
    no_recent_copy_alarm_hours = 1
  }
  expect_failures = [var.no_recent_copy_alarm_hours]
}

run "alarm_actions" {
  command = plan
  # expect: alarm_actions must be ARNs
  variables {
    alarm_actions = ["dba-alerts"]
  }
  expect_failures = [var.alarm_actions]
}

run "metrics_namespace" {
  command = plan
  # expect: metrics_namespace must be 1-255 letters
  variables {
    metrics_namespace = "AWS/RDS"
  }
  expect_failures = [var.metrics_namespace]
}

run "lambda_architecture" {
  command = plan
  # expect: lambda_architecture must be x86_64 or arm64
  variables {
    lambda_architecture = "riscv"
  }
  expect_failures = [var.lambda_architecture]
}

run "log_retention_days" {
  command = plan
  # expect: log_retention_days must be a value CloudWatch Logs accepts
  variables {
    log_retention_days = 10
  }
  expect_failures = [var.log_retention_days]
}
