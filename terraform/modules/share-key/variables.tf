variable "vault_account_id" {
  description = "The vault account, which may use the key through RDS to copy the snapshots shared with it."
  type        = string

  validation {
    condition     = can(regex("^[0-9]{12}$", var.vault_account_id))
    error_message = "vault_account_id must be an AWS account id: 12 digits."
  }
}

variable "alias_name" {
  description = "The key's alias, without alias/ (for example <project>-<environment>-vault-share-eu-west-1)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9/_-]{1,200}$", var.alias_name)) && !startswith(var.alias_name, "aws/")
    error_message = "alias_name must be 1-200 letters, digits, / _ - (KMS's rule for an alias), not beginning with aws/ (AWS's own)."
  }
}

variable "description" {
  description = "The key's description."
  type        = string
  default     = "database-backup: snapshots shared with the vault account"
}

variable "copied_into_regions" {
  description = "Other regions where the vault account copies snapshots encrypted with this key in one step (the vault's region, for DB snapshots). Empty: only this key's own region."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for region in var.copied_into_regions : can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$", region))])
    error_message = "copied_into_regions must hold AWS region names such as eu-west-1."
  }
}

variable "deletion_window_in_days" {
  description = "Days before a key scheduled for deletion is deleted (7-30)."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "deletion_window_in_days must be between 7 and 30 (KMS's range)."
  }
}

variable "tags" {
  description = "Tags on the key."
  type        = map(string)
  default     = {}
}
