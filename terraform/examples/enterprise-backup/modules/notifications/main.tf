# Stands in for an organisation's notification topics.

variable "name" {
  description = "Topic name."
  type        = string
}

variable "kms_key_arn" {
  description = "Key that encrypts the topic."
  type        = string
}

resource "aws_sns_topic" "email" {
  name              = var.name
  kms_master_key_id = var.kms_key_arn
}

data "aws_caller_identity" "current" {}
data "aws_region" "current" {}
data "aws_partition" "current" {}

# Built from the name so that it is known when planning; depends_on keeps users of it
# waiting until the topic exists.
output "email_topic_arn" {
  description = "Topic ARN"
  value       = "arn:${data.aws_partition.current.partition}:sns:${data.aws_region.current.id}:${data.aws_caller_identity.current.account_id}:${aws_sns_topic.email.name}"
  depends_on  = [aws_sns_topic.email]
}
