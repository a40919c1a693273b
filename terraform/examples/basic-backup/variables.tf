variable "aws_region" {
  description = "Region of the databases and of the backup."
  type        = string
  default     = "us-east-1"
}
