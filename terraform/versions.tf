terraform {
  # 1.9: validation blocks that refer to other variables.
  required_version = ">= 1.9"

  required_providers {
    aws = {
      source = "hashicorp/aws"
      # 5.27: aws_lambda_function.logging_config (JSON logs).
      version = ">= 5.27, < 7.0"
    }
  }
}
