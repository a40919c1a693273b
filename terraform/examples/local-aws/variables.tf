variable "local_aws_endpoint" {
  description = "URL of the local AWS (scripts/local-aws start prints it as AWS_ENDPOINT_URL), such as http://127.0.0.1:4566."
  type        = string

  validation {
    condition     = can(regex("^http://(127\\.0\\.0\\.1|localhost):[0-9]+$", var.local_aws_endpoint))
    error_message = "local_aws_endpoint must be http://127.0.0.1:<port> (the local AWS), without a trailing slash."
  }
}

variable "slack_webhook_url" {
  description = "Slack incoming webhook; the demo passes the local AWS's Slack sink (<endpoint>/_gateway/slack/...)."
  type        = string
  default     = null
  sensitive   = true
}

variable "copy_region" {
  description = "Region that receives the snapshot copies."
  type        = string
  default     = "us-west-2"
}

variable "vault_account_id" {
  description = "The local AWS account that plays the vault account."
  type        = string
  default     = "111111111111"
}

variable "database_password" {
  description = "The demo databases' master password (scripts/python/demo/world.py creates them with it): the drill probe logs in with it."
  type        = string
  default     = "correct-horse-battery-staple"
  sensitive   = true
}
