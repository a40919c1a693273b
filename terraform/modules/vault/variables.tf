variable "name" {
  description = "Prefix of the vault's resources (the key's alias, the role): the source module's project_name-environment reads best."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,40}$", var.name))
    error_message = "name must be 1-40 letters, digits and + = , . @ _ - characters (it prefixes an IAM role name)."
  }
}

variable "source_account_id" {
  description = "The account whose snapshots the vault keeps: the only account whose role may copy into the vault."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.source_account_id))
    error_message = "source_account_id must be an AWS account id: 12 digits."
  }
}

variable "source_region" {
  description = "The region of the source module, whose snapshots are copied (the vault's copies may be in another: this provider's region)."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$", var.source_region))
    error_message = "source_region must be an AWS region name such as us-east-1."
  }
}

variable "source_prefix" {
  description = "The source module's project_name-environment: only its vault function's role (named <prefix>-<hash>-vault, under any iam_role_name_prefix and path) may assume the vault's role. A name, not the role's ARN, so that neither module waits for the other."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]{1,64}$", var.source_prefix))
    error_message = "source_prefix must be the source module's project_name-environment: letters, digits and + = , . @ _ - characters."
  }
}

variable "external_id" {
  description = "An external id the source must present to assume the vault's role (IAM User Guide, \"Access to AWS accounts owned by third parties\"); null: none asked. Give the source module the same (vault.external_id)."
  type        = string
  default     = null

  validation {
    condition     = var.external_id == null || try(length(var.external_id) >= 2 && length(var.external_id) <= 1224 && can(regex("^[A-Za-z0-9+=,.@:/_-]+$", var.external_id)), false)
    error_message = "external_id must be 2-1224 letters, digits and + = , . @ : / _ - characters (STS's rule for an external id)."
  }
}

variable "kms_key_deletion_window_days" {
  description = "Days between scheduling the vault key's deletion and its deletion (7-30): every vault copy is encrypted with it."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_key_deletion_window_days >= 7 && var.kms_key_deletion_window_days <= 30
    error_message = "kms_key_deletion_window_days must be 7 to 30 (KMS's own bounds)."
  }
}

variable "tags" {
  description = "Tags for the vault's resources."
  type        = map(string)
  default     = {}
}
