variable "aws_region" {
  description = "Region of the databases and of the backup."
  type        = string
  default     = "us-east-1"
}

variable "slack_webhook_url" {
  description = "Slack incoming webhook for the run summaries (null: SNS only)."
  type        = string
  default     = null
  sensitive   = true
}
