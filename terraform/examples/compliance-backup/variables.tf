variable "aws_region" {
  description = "Region of the database and of the backup."
  type        = string
  default     = "us-east-1"
}

variable "copy_region" {
  description = "Second region that holds a copy of every snapshot."
  type        = string
  default     = "us-west-2"
}

variable "copy_region_kms_key_arn" {
  description = "Customer-managed key in copy_region for the copies (null: the AWS managed RDS key there)."
  type        = string
  default     = null
}

variable "notification_email" {
  description = "Who hears about every monthly run."
  type        = string
  default     = "compliance-dba@company.com"
}
