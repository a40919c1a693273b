# Every validated variable of the share-key module refuses a bad value at `terraform plan`: one
# run per case, each expecting the validation of the variable that refuses it to fail, as
# terraform/tests/bad_values.tftest.hcl does for the module (tests/terraform/test_refusals.py
# checks every module's file the same way).
#   cd terraform/modules/share-key && terraform init && terraform test
# The provider is mocked: nothing here needs AWS or its credentials.

mock_provider "aws" {
  mock_data "aws_caller_identity" {
    defaults = { account_id = "123456789012" }
  }
  mock_data "aws_region" {
    defaults = { id = "eu-west-1" }
  }
  mock_data "aws_partition" {
    defaults = { partition = "aws" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{\"Version\":\"2012-10-17\",\"Statement\":[]}" }
  }
}

# A valid key, which each run changes in one place.
variables {
  vault_account_id = "111111111111"
  alias_name       = "checks-test-vault-share-eu-west-1"
}

run "vault_account_id" {
  command = plan
  # expect: vault_account_id must be an AWS account id
  variables {
    vault_account_id = "1111"
  }
  expect_failures = [var.vault_account_id]
}

run "alias_name" {
  command = plan
  # expect: alias_name must be 1-200 letters
  variables {
    alias_name = "aws/rds"
  }
  expect_failures = [var.alias_name]
}

run "copied_into_regions" {
  command = plan
  # expect: copied_into_regions must hold AWS region names
  variables {
    copied_into_regions = ["Ireland"]
  }
  expect_failures = [var.copied_into_regions]
}

run "deletion_window_in_days" {
  command = plan
  # expect: deletion_window_in_days must be between 7 and 30
  variables {
    deletion_window_in_days = 3
  }
  expect_failures = [var.deletion_window_in_days]
}
