variable "name" {
  description = "Prefix of the vault's resources (the key's alias, its roles, functions, rules, topic and alarms): the source module's project_name-environment reads best."
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

variable "source_managed_by" {
  description = "The source module's managed_by_tag_value output, PROJECT_NAME/ENVIRONMENT/SOURCE_REGION: the vault's copies carry it, and the vault's prune deletes and measures only copies that do. Written out, not taken from the source module, which takes this module's outputs."
  type        = string

  validation {
    condition     = can(regex("^[^/]+/[^/]+/[a-z0-9-]+$", var.source_managed_by)) && length(var.source_managed_by) <= 256
    error_message = "source_managed_by must be the source module's managed_by_tag_value: PROJECT_NAME/ENVIRONMENT/SOURCE_REGION, at most 256 characters."
  }

  validation {
    condition     = endswith(var.source_managed_by, "/${var.source_region}")
    error_message = "source_managed_by (${var.source_managed_by}) must end with the source region, /${var.source_region}: the source module's value is PROJECT_NAME/ENVIRONMENT/REGION."
  }
}

variable "databases" {
  description = "The source's databases whose copies the no-recent-vault-copy alarm watches: one never copied then alarms too. Empty: every database the vault holds copies of (a database taken out of the backup then keeps its last copies, and the alarm, until they are deleted by hand)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for db in var.databases : can(regex("^[A-Za-z][A-Za-z0-9-]{0,62}$", db))])
    error_message = "databases must be RDS identifiers: 1-63 letters, digits and hyphens, starting with a letter."
  }
}

variable "retention_days" {
  description = "Days the vault keeps its copies when retention_policy is null (default 2557: seven years), the newest min_snapshots_to_keep of each database whatever their age."
  type        = number
  default     = 2557

  validation {
    condition     = var.retention_days == floor(var.retention_days) && var.retention_days >= 1 && var.retention_days <= 36500
    error_message = "retention_days must be a whole number of days from 1 to 36500."
  }
}

variable "retention_policy" {
  description = "The vault's own grandfather-father-son retention in place of retention_days, e.g. { daily = 7, monthly = 84 } (seven years of monthly copies). Calendar periods in UTC, ISO weeks; the first copy of a period represents it; a tier keeps the newest periods that have a copy. null: keep by age (retention_days)."
  type        = map(number)
  default     = null

  validation {
    condition     = var.retention_policy == null || alltrue([for tier in keys(coalesce(var.retention_policy, {})) : contains(["daily", "weekly", "monthly", "yearly"], tier)])
    error_message = "retention_policy may only count daily, weekly, monthly and yearly copies (an unknown tier name is refused, not ignored)."
  }

  validation {
    condition     = var.retention_policy == null || alltrue([for count in values(coalesce(var.retention_policy, {})) : count == floor(count) && count >= 0])
    error_message = "retention_policy counts must be whole numbers, 0 or more."
  }

  validation {
    condition     = var.retention_policy == null || anytrue([for count in values(coalesce(var.retention_policy, {})) : count > 0])
    error_message = "retention_policy keeps nothing: give at least one of daily, weekly, monthly, yearly a count above 0 (or leave it null)."
  }

  validation {
    condition = var.retention_policy == null || alltrue([
      for tier, most in { daily = 36500, weekly = 5200, monthly = 1200, yearly = 100 } : lookup(coalesce(var.retention_policy, {}), tier, 0) <= most
    ])
    error_message = "retention_policy keeps more than a century: at most 36500 daily, 5200 weekly, 1200 monthly, 100 yearly."
  }
}

variable "min_snapshots_to_keep" {
  description = "The vault's prune never deletes the newest this-many copies of a database, whatever their age."
  type        = number
  default     = 3

  validation {
    condition     = var.min_snapshots_to_keep == floor(var.min_snapshots_to_keep) && var.min_snapshots_to_keep >= 1
    error_message = "min_snapshots_to_keep must be a whole number, at least 1: the newest copy of a database is never deleted."
  }
}

variable "prune_schedule" {
  description = "When the vault's prune runs (EventBridge schedule expression), apart from the source's runs."
  type        = string
  default     = "cron(0 6 * * ? *)"

  validation {
    condition = (
      can(regex("^cron\\(\\S+ \\S+ \\S+ \\S+ \\S+ \\S+\\)$", var.prune_schedule)) ||
      can(regex("^rate\\((1 (minute|hour|day)|([2-9]|[1-9][0-9]+) (minutes|hours|days))\\)$", var.prune_schedule))
    )
    error_message = "prune_schedule must be an EventBridge schedule expression: cron(minutes hours day-of-month month day-of-week year), for example cron(0 6 * * ? *), or rate(N unit), for example rate(1 day)."
  }
}

variable "prune_dry_run" {
  description = "The vault's prune reports (in its log and output) what it would delete without deleting anything."
  type        = bool
  default     = false
}

variable "prune_guard_fraction" {
  description = "A vault prune that would delete more than this fraction of one database's copies deletes nothing (a typo in retention_policy must not take years of copies with it); raise it, or invoke the prune function once with confirm_retention_change, to apply such a change."
  type        = number
  default     = 0.5

  validation {
    condition     = var.prune_guard_fraction > 0 && var.prune_guard_fraction <= 1
    error_message = "prune_guard_fraction must be above 0 and at most 1."
  }
}

variable "no_recent_copy_alarm_hours" {
  description = "The no-recent-vault-copy alarm fires when a database's newest vault copy is older than this many hours (more than the source's backup interval, plus the copy's time); the vault's prune also deletes nothing of a database whose newest copy is older."
  type        = number
  default     = 36

  validation {
    condition     = var.no_recent_copy_alarm_hours == floor(var.no_recent_copy_alarm_hours) && var.no_recent_copy_alarm_hours >= 2 && var.no_recent_copy_alarm_hours <= 8760
    error_message = "no_recent_copy_alarm_hours must be a whole number of hours from 2 to 8760."
  }
}

variable "alarm_actions" {
  description = "ARNs notified, besides the vault's own topic (the alarm_topic_arn output), when a vault alarm changes state."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for arn in var.alarm_actions : startswith(arn, "arn:")])
    error_message = "alarm_actions must be ARNs (an SNS topic's, for example)."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of VaultSnapshotAge in the vault account."
  type        = string
  default     = "CustomMetrics/DatabaseBackup"

  validation {
    condition     = can(regex("^[A-Za-z0-9.\\-_/#:]{1,255}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be 1-255 letters, digits and . - _ / # : characters, not starting with AWS/ (reserved for AWS services)."
  }
}

variable "lambda_package_dir" {
  description = "Directory holding the function zips, DIR/backup-FUNCTION/bootstrap.zip (the vault runs prune and notify), as scripts/build-lambdas writes them and the release's lambda/ holds them (null: the module's own, ../../lambda)."
  type        = string
  default     = null
}

variable "lambda_architecture" {
  description = "Instruction set of the vault's functions: x86_64, or arm64 (build with scripts/build-lambdas --arm64)."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.lambda_architecture)
    error_message = "lambda_architecture must be x86_64 or arm64."
  }
}

variable "log_retention_days" {
  description = "Days the vault's function logs are kept (a year: what its prune deleted stays on record that long)."
  type        = number
  default     = 365

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "allow_restore_drills" {
  description = "Whether the source's restore drills may restore the vault's copies in this account (restore_drill.copy = \"vault\"): a role (output drill_role_arn, given to the source module as vault.drill_role_arn) that may restore the copies of the source's backups to databases named drill-<hash>-*, tag those, and delete the ones carrying the source's drill tag; nothing else (every deletion, sharing, export and change of a copy or a database is denied). The restored databases cost as RDS databases for the drill's time."
  type        = bool
  default     = false
}
