# Required

variable "project_name" {
  description = "Name of the project. Prefixes every resource name and is tagged on every snapshot."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,22}[a-z0-9]$", var.project_name)) && !strcontains(var.project_name, "--")
    error_message = "project_name must be 2-24 lowercase letters, digits and single hyphens, start with a letter and not end with a hyphen (it becomes part of bucket, role and function names)."
  }
}

variable "environment" {
  description = "Environment name (staging, production). Part of every resource name and tagged on every snapshot."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,14}[a-z0-9]$", var.environment)) && !strcontains(var.environment, "--")
    error_message = "environment must be 2-16 lowercase letters, digits and single hyphens, for example staging or production."
  }
}

variable "rds_instance_ids" {
  description = "List of RDS instance identifiers to backup. Each one is snapshotted on every run; the execution input can narrow a run to some of them. May be empty when selection_tags or db_identifier_patterns choose the databases."
  type        = list(string)
  default     = []

  validation {
    condition = alltrue([
      for id in var.rds_instance_ids :
      can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,62}$", id)) && !strcontains(id, "--") && !endswith(id, "-")
    ])
    error_message = "Each rds_instance_ids entry must be an RDS identifier: 1-63 letters, digits and hyphens, starting with a letter, without two consecutive hyphens or a trailing hyphen."
  }

  validation {
    condition     = length(distinct([for id in var.rds_instance_ids : lower(id)])) == length(var.rds_instance_ids)
    error_message = "rds_instance_ids lists a database twice (RDS identifiers are case-insensitive)."
  }

  validation {
    condition     = length(var.rds_instance_ids) + length(var.rds_cluster_ids) + length(var.selection_tags) + length(var.db_identifier_patterns) > 0
    error_message = "rds_instance_ids is empty and so are rds_cluster_ids, selection_tags and db_identifier_patterns: name at least one database, or select them by tag or pattern."
  }
}

variable "selection_tags" {
  description = "Also back up, at each run, every DB instance and DB cluster of the region that carries all of these tags (a value of \"*\": any value). New databases with the tags are picked up without an apply. IAM lets the functions touch only databases carrying them."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for key, value in var.selection_tags : length(key) >= 1 && length(key) <= 128 && !startswith(lower(key), "aws:") && length(value) <= 256])
    error_message = "selection_tags must be RDS tags: keys of 1 to 128 characters not starting with aws:, values of at most 256 characters (\"*\" for any value)."
  }
}

variable "exclude_tags" {
  description = "Leave out a database that selection_tags or db_identifier_patterns select when it carries any of these tags (a value of \"*\": any value). Databases named in rds_instance_ids or rds_cluster_ids are always backed up."
  type        = map(string)
  default     = {}

  validation {
    condition     = alltrue([for key, value in var.exclude_tags : length(key) >= 1 && length(key) <= 128 && !startswith(lower(key), "aws:") && length(value) <= 256])
    error_message = "exclude_tags must be RDS tags: keys of 1 to 128 characters not starting with aws:, values of at most 256 characters (\"*\" for any value)."
  }

  validation {
    condition     = length(var.exclude_tags) == 0 || length(var.selection_tags) + length(var.db_identifier_patterns) > 0
    error_message = "exclude_tags leaves out databases that selection_tags or db_identifier_patterns select, and neither is set: set one, or remove exclude_tags."
  }
}

variable "db_identifier_patterns" {
  description = "Also back up, at each run, every DB instance and DB cluster of the region whose identifier one of these regular expressions matches whole (RE2 syntax as Terraform's regex, without Unicode classes; identifiers are lowercase). With selection_tags, a database must match both. Without selection_tags, IAM cannot scope by name: the functions may snapshot any database of the region (see the README's Selection)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for pattern in var.db_identifier_patterns : length(pattern) > 0 && can(regexall(pattern, ""))])
    error_message = "Each db_identifier_patterns entry must be a non-empty regular expression (RE2 syntax, as Terraform's regex)."
  }
}

# Backup

variable "backup_retention_days" {
  description = "Number of days to retain backups. Prune deletes the module's own snapshots older than this, keeping at least min_snapshots_to_keep per database."
  type        = number
  default     = 30

  validation {
    condition     = var.backup_retention_days == floor(var.backup_retention_days) && var.backup_retention_days >= 1 && var.backup_retention_days <= 36500
    error_message = "backup_retention_days must be a whole number of days from 1 to 36500."
  }

  validation {
    condition     = var.s3_lifecycle_rules.expiration_days == null || var.backup_retention_days <= coalesce(var.s3_lifecycle_rules.expiration_days, 36500)
    error_message = "backup_retention_days is longer than s3_lifecycle_rules.expiration_days: the S3 exports would expire before the snapshots they archive."
  }
}

variable "backup_schedule" {
  description = "CloudWatch Events schedule expression of the backup run (UTC), cron(...) or rate(...)."
  type        = string
  default     = "cron(0 2 * * ? *)"

  validation {
    condition = (
      can(regex("^cron\\(\\S+ \\S+ \\S+ \\S+ \\S+ \\S+\\)$", var.backup_schedule)) ||
      can(regex("^rate\\((1 (minute|hour|day)|([2-9]|[1-9][0-9]+) (minutes|hours|days))\\)$", var.backup_schedule))
    )
    error_message = "backup_schedule must be an EventBridge schedule expression: cron(minutes hours day-of-month month day-of-week year), for example cron(0 2 * * ? *), or rate(N unit), for example rate(1 day) or rate(12 hours)."
  }
}

variable "enable_cross_region_copy" {
  description = "Enable cross-region backup copying: every new snapshot is copied to cross_region_destination, and copies there are pruned with the same retention."
  type        = bool
  default     = false

  validation {
    condition     = !var.enable_cross_region_copy || var.cross_region_destination != null
    error_message = "enable_cross_region_copy is true but cross_region_destination is not set: name the destination region, for example us-west-2."
  }
}

variable "cross_region_destination" {
  description = "Destination region for cross-region copies."
  type        = string
  default     = null

  validation {
    condition     = var.cross_region_destination == null || can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$", var.cross_region_destination))
    error_message = "cross_region_destination must be an AWS region name such as us-west-2 or eu-central-1."
  }
}

variable "backup_window" {
  description = "Preferred backup window (UTC), hh24:mi-hh24:mi, shown on the dashboard. Without manage_automated_backups the plan warns when a daily backup_schedule starts outside it. With manage_automated_backups it becomes each database's RDS backup window (PreferredBackupWindow), in which RDS takes its automated backups, and the plan warns when a daily backup_schedule starts inside it (snapshots would wait for RDS's backups): move one of them."
  type        = string
  default     = "02:00-03:00"

  validation {
    condition     = can(regex("^([01][0-9]|2[0-3]):[0-5][0-9]-([01][0-9]|2[0-3]):[0-5][0-9]$", var.backup_window))
    error_message = "backup_window must be hh24:mi-hh24:mi in UTC, for example 02:00-03:00."
  }

  validation {
    # RDS's own rule for backup windows: at least 30 minutes (the window may wrap past midnight).
    # An unreadable window is the format rule's to report.
    condition = try(
      (
        (tonumber(substr(var.backup_window, 6, 2)) * 60 + tonumber(substr(var.backup_window, 9, 2))) -
        (tonumber(substr(var.backup_window, 0, 2)) * 60 + tonumber(substr(var.backup_window, 3, 2))) + 1440
      ) % 1440 >= 30,
      true,
    )
    error_message = "backup_window must be at least 30 minutes long."
  }
}

# S3

variable "s3_bucket_name" {
  description = "Custom S3 bucket name (auto-generated if null: PROJECT-ENVIRONMENT-backups-HASH, HASH six hex digits of the account, project, environment and region). A bucket keeps the name it was created with."
  type        = string
  default     = null

  validation {
    condition = var.s3_bucket_name == null || (
      can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.s3_bucket_name)) &&
      !strcontains(coalesce(var.s3_bucket_name, "x"), "..") &&
      !can(regex("^[0-9]+\\.[0-9]+\\.[0-9]+\\.[0-9]+$", coalesce(var.s3_bucket_name, "x")))
    )
    error_message = "s3_bucket_name must be a valid S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit, not an IP address."
  }

  # S3 reserves these for other kinds of bucket and alias (user guide, "General purpose bucket naming rules").
  validation {
    condition = var.s3_bucket_name == null || !(
      can(regex("^(xn--|sthree-|amzn-s3-demo-)", coalesce(var.s3_bucket_name, "x"))) ||
      can(regex("(-s3alias|--ol-s3|\\.mrap|--x-s3)$", coalesce(var.s3_bucket_name, "x")))
    )
    error_message = "s3_bucket_name ${coalesce(var.s3_bucket_name, "-")} uses a prefix or suffix S3 reserves (xn--, sthree-, amzn-s3-demo-; -s3alias, --ol-s3, .mrap, --x-s3 for directory buckets): the module's bucket is a general purpose bucket."
  }

  # The access-log bucket is named after it: NAME-logs, at most 63 characters too.
  validation {
    condition     = var.s3_bucket_name == null ? true : (!var.enable_s3_access_logging || length(var.s3_bucket_name) <= 58)
    error_message = "s3_bucket_name is too long for its access-log bucket (${coalesce(var.s3_bucket_name, "-")}-logs would be ${length(coalesce(var.s3_bucket_name, "-")) + 5} characters; S3 allows 63): at most 58 characters with enable_s3_access_logging."
  }
}

variable "s3_storage_class" {
  description = "Default S3 storage class of the exports: STANDARD keeps them in S3 Standard until transition_to_ia_days; another class replaces STANDARD_IA as the target of that first lifecycle transition."
  type        = string
  default     = "STANDARD"

  validation {
    condition     = contains(["STANDARD", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR"], var.s3_storage_class)
    error_message = "s3_storage_class must be one of STANDARD, STANDARD_IA, ONEZONE_IA, INTELLIGENT_TIERING, GLACIER_IR (GLACIER and DEEP_ARCHIVE are lifecycle steps, see s3_lifecycle_rules)."
  }
}

variable "enable_s3_versioning" {
  description = "Enable S3 bucket versioning. Noncurrent versions expire after s3_lifecycle_rules.expiration_days."
  type        = bool
  default     = true
}

variable "s3_force_destroy" {
  description = "Let terraform destroy delete the backup and access-log buckets with everything in them (exports, access logs). Off by default: while either bucket holds objects, a destroy then stops before it changes anything (the buckets' guard, BucketsHoldBackups) rather than deleting backups."
  type        = bool
  default     = false
}

variable "s3_lifecycle_rules" {
  description = "S3 lifecycle management rules of the backup bucket, in days after an object is written. Set a step to null to leave it out."
  type = object({
    transition_to_ia_days           = optional(number, 30)
    transition_to_glacier_days      = optional(number, 90)
    transition_to_deep_archive_days = optional(number, 365)
    expiration_days                 = optional(number, 2555)
  })
  default = {
    transition_to_ia_days           = 30
    transition_to_glacier_days      = 90
    transition_to_deep_archive_days = 365
    expiration_days                 = 2555
  }

  validation {
    condition = alltrue([
      for days in values(var.s3_lifecycle_rules) : days == null || try(days == floor(days) && days >= 1 && days <= 36500, false)
    ])
    error_message = "Each s3_lifecycle_rules value must be null or a whole number of days from 1 to 36500."
  }

  validation {
    condition     = try(var.s3_lifecycle_rules.transition_to_ia_days >= 30, true)
    error_message = "s3_lifecycle_rules.transition_to_ia_days must be at least 30: S3 does not move objects to an infrequent-access class sooner."
  }

  validation {
    condition = alltrue([
      try(var.s3_lifecycle_rules.transition_to_glacier_days >= var.s3_lifecycle_rules.transition_to_ia_days + 30, true),
      try(var.s3_lifecycle_rules.transition_to_deep_archive_days >= var.s3_lifecycle_rules.transition_to_glacier_days + 90, true),
      try(var.s3_lifecycle_rules.transition_to_deep_archive_days >= var.s3_lifecycle_rules.transition_to_ia_days + 30, true),
      try(var.s3_lifecycle_rules.expiration_days > max([for d in [
        var.s3_lifecycle_rules.transition_to_ia_days,
        var.s3_lifecycle_rules.transition_to_glacier_days,
        var.s3_lifecycle_rules.transition_to_deep_archive_days,
      ] : d if d != null]...), true),
    ])
    error_message = "s3_lifecycle_rules days must increase in order, as S3 requires: transition_to_glacier_days at least 30 after transition_to_ia_days, transition_to_deep_archive_days at least 90 after transition_to_glacier_days (30 after transition_to_ia_days), and expiration_days after every transition."
  }
}

# Lambda

variable "lambda_timeout" {
  description = "Lambda function timeout in seconds, for each of the functions."
  type        = number
  default     = 300

  validation {
    condition     = var.lambda_timeout == floor(var.lambda_timeout) && var.lambda_timeout >= 30 && var.lambda_timeout <= 900
    error_message = "lambda_timeout must be a whole number of seconds from 30 to 900 (Lambda's maximum)."
  }
}

variable "lambda_memory_size" {
  description = "Lambda function memory in MB, for each of the functions."
  type        = number
  default     = 256

  validation {
    condition     = var.lambda_memory_size == floor(var.lambda_memory_size) && var.lambda_memory_size >= 128 && var.lambda_memory_size <= 10240
    error_message = "lambda_memory_size must be a whole number of MB from 128 to 10240."
  }
}

variable "lambda_runtime" {
  description = "Lambda runtime version. The functions are Rust binaries, so only an OS-only runtime can run them: provided.al2023 or provided.al2 is used as given; any other Lambda runtime name (such as the spec's python3.9) is accepted and provided.al2023 is used."
  type        = string
  default     = "python3.9"

  validation {
    condition     = can(regex("^(provided(\\.al2|\\.al2023)?|python3\\.[0-9]+|nodejs[0-9]+\\.x|java[0-9]+(\\.al2)?|dotnet[0-9]+|ruby3\\.[0-9]+)$", var.lambda_runtime))
    error_message = "lambda_runtime must be a Lambda runtime name such as provided.al2023, provided.al2 or python3.9."
  }
}

variable "lambda_reserved_concurrency" {
  description = "Reserved concurrency for each Lambda function (-1: no reservation). Invocations over it are throttled and retried by the state machine with backoff."
  type        = number
  default     = 1

  validation {
    condition     = var.lambda_reserved_concurrency == floor(var.lambda_reserved_concurrency) && (var.lambda_reserved_concurrency == -1 || var.lambda_reserved_concurrency >= 1)
    error_message = "lambda_reserved_concurrency must be -1 (unreserved) or a whole number of at least 1 (0 would stop every function)."
  }
}

# Monitoring

variable "enable_cloudwatch_logs" {
  description = "Enable CloudWatch Logs for Lambda (and the state machine): log groups with retention and KMS, and the permission to write them."
  type        = bool
  default     = true
}

variable "log_retention_days" {
  description = "CloudWatch Logs retention period."
  type        = number
  default     = 14

  validation {
    condition     = contains([1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.log_retention_days)
    error_message = "log_retention_days must be a value CloudWatch Logs accepts: 1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288 or 3653."
  }
}

variable "enable_detailed_monitoring" {
  description = "Enable detailed CloudWatch monitoring: per-database dashboard widgets and per-database failure, snapshot-age and point-in-time recovery alarms."
  type        = bool
  default     = false
}

# Notification

variable "notification_email" {
  description = "Email address for backup notifications (subscribed to the SNS topic; the address must confirm)."
  type        = string
  default     = null

  validation {
    condition     = var.notification_email == null || can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", var.notification_email))
    error_message = "notification_email must be an email address such as dba-team@company.com."
  }
}

variable "slack_webhook_url" {
  description = "Slack webhook URL for notifications (a secret: kept out of plan output, stored in a Secrets Manager secret under the module's KMS key that only the notify function reads)."
  type        = string
  default     = null
  sensitive   = true

  validation {
    condition     = var.slack_webhook_url == null || can(regex("^(https://[^/\\s]+/\\S*|http://(127\\.0\\.0\\.1|localhost)(:[0-9]+)?/\\S*)$", var.slack_webhook_url))
    error_message = "slack_webhook_url must be an https:// URL such as https://hooks.slack.com/services/... (http:// only to this machine, for a local sink)."
  }
}

variable "sns_topic_arn" {
  description = "Existing SNS topic ARN for notifications. When set, the module publishes there and creates no topic of its own."
  type        = string
  default     = null

  validation {
    condition     = var.sns_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}(\\.fifo)?$", var.sns_topic_arn))
    error_message = "sns_topic_arn must be an SNS topic ARN such as arn:aws:sns:us-east-1:123456789012:alerts."
  }
}

variable "create_sns_topic" {
  description = "Whether the module creates its own SNS topic (null: when sns_topic_arn is null). Set false with an sns_topic_arn known only after apply, such as a topic created in the same apply."
  type        = bool
  default     = null

  validation {
    condition     = var.create_sns_topic == null ? true : (var.create_sns_topic ? var.sns_topic_arn == null : var.sns_topic_arn != null)
    error_message = "create_sns_topic = true creates the module's topic: leave sns_topic_arn null; create_sns_topic = false publishes to yours: set sns_topic_arn."
  }
}

variable "sns_topic_kms_key_arn" {
  description = "ARN of the KMS key that encrypts the topic you bring (sns_topic_arn): notify gets kms:GenerateDataKey* and kms:Decrypt on it through SNS only (null: the topic is not encrypted, or the module's own topic)."
  type        = string
  default     = null

  validation {
    condition     = var.sns_topic_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/(mrk-)?[0-9a-f-]{32,36}$", var.sns_topic_kms_key_arn))
    error_message = "sns_topic_kms_key_arn must be a KMS key ARN such as arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab (not an alias: IAM matches the key's ARN)."
  }
  validation {
    condition     = var.sns_topic_kms_key_arn == null || var.sns_topic_arn != null
    error_message = "sns_topic_kms_key_arn is the key of a topic you bring: set sns_topic_arn too (the module's own topic uses the module's key)."
  }
}

# Security

variable "iam_permissions_boundary_arn" {
  description = "ARN of the permissions boundary policy set on every IAM role the module creates (organisations' SCPs often require one on CreateRole); null: none."
  type        = string
  default     = null

  validation {
    condition     = var.iam_permissions_boundary_arn == null || can(regex("^arn:aws[a-z-]*:iam::([0-9]{12}|aws):policy/[\\x21-\\x7E]{1,512}$", var.iam_permissions_boundary_arn))
    error_message = "iam_permissions_boundary_arn must be an IAM policy ARN such as arn:aws:iam::123456789012:policy/platform-boundary."
  }
}

variable "iam_role_path" {
  description = "Path of every IAM role the module creates, such as /backup/ (IAM paths start and end with /)."
  type        = string
  default     = "/"

  validation {
    condition     = can(regex("^/([\\x21-\\x2E\\x30-\\x7E]+/)*$", var.iam_role_path)) && length(var.iam_role_path) <= 512
    error_message = "iam_role_path must start and end with / and hold at most 512 printable ASCII characters, such as /backup/."
  }
}

variable "iam_role_name_prefix" {
  description = "Prefix of the name of every IAM role the module creates, such as an organisation's required role prefix (role names are PREFIX + PROJECT-ENVIRONMENT-HASH-ROLE, HASH six hex digits of the account, project, environment and region; at most 64 characters)."
  type        = string
  default     = ""

  validation {
    condition     = can(regex("^[A-Za-z0-9+=,.@_-]*$", var.iam_role_name_prefix))
    error_message = "iam_role_name_prefix may hold only letters, digits and + = , . @ _ - (IAM role name characters)."
  }
  # The longest role name is PREFIX + PROJECT-ENVIRONMENT + -HASH (7) + -wait-for-available (19).
  validation {
    condition     = length("${var.iam_role_name_prefix}${var.project_name}-${var.environment}-123456-wait-for-available") <= 64
    error_message = "iam_role_name_prefix, project_name and environment are too long for the role names: ${var.iam_role_name_prefix}${var.project_name}-${var.environment}-HASH-wait-for-available would be ${length("${var.iam_role_name_prefix}${var.project_name}-${var.environment}-123456-wait-for-available")} characters, IAM allows 64."
  }
}

variable "kms_key_id" {
  description = "KMS key ID for encryption (auto-generated if null): a key id, key ARN, alias name or alias ARN in the module's region."
  type        = string
  default     = null

  validation {
    condition = var.kms_key_id == null || can(regex(
      "^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|mrk-[0-9a-f]{32}|alias/[A-Za-z0-9/_-]+|arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key/[0-9a-z-]+|alias/[A-Za-z0-9/_-]+))$",
      var.kms_key_id
    ))
    error_message = "kms_key_id must be a KMS key id, key ARN, alias name (alias/...) or alias ARN."
  }
}

variable "create_kms_key" {
  description = "Whether the module creates its own KMS key (null: when kms_key_id is null). Set false with a kms_key_id known only after apply, such as a key created in the same apply."
  type        = bool
  default     = null

  validation {
    condition     = var.create_kms_key == null ? true : (var.create_kms_key ? var.kms_key_id == null : var.kms_key_id != null)
    error_message = "create_kms_key = true creates the module's key: leave kms_key_id null; create_kms_key = false uses your key: set kms_key_id."
  }
}

variable "kms_key_deletion_protection" {
  description = "Refuse every plan that deletes the module's own KMS key (terraform destroy, create_kms_key = false, a kms_key_id): the exports, logs and secrets it encrypts stay readable. Set false only for stacks whose backups may go; docs/operations.md says how to retire or replace a protected key."
  type        = bool
  default     = true
}

variable "enable_s3_encryption" {
  description = "Enable S3 bucket encryption with the KMS key (SSE-KMS, bucket key on). When false the bucket uses S3-managed keys (SSE-S3), since S3 encrypts every object."
  type        = bool
  default     = true
}

variable "enable_s3_access_logging" {
  description = "Enable S3 access logging: the backup bucket logs to a separate log bucket (SSE-S3, as S3 server access logging requires)."
  type        = bool
  default     = true
}

# Network

variable "vpc_id" {
  description = "VPC ID for Lambda function. When set, the functions run in subnet_ids with a security group that allows HTTPS out only (or lambda_security_group_ids)."
  type        = string
  default     = null

  validation {
    condition     = var.vpc_id == null || can(regex("^vpc-[0-9a-f]{8,17}$", var.vpc_id))
    error_message = "vpc_id must be a VPC id such as vpc-0abc1234def567890."
  }
}

variable "subnet_ids" {
  description = "Subnet IDs for Lambda function (required with vpc_id)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", id))])
    error_message = "Each subnet_ids entry must be a subnet id such as subnet-0abc1234def567890."
  }

  validation {
    condition     = var.vpc_id == null || length(var.subnet_ids) > 0
    error_message = "vpc_id is set but subnet_ids is empty: the functions need at least one subnet of that VPC."
  }

  validation {
    condition     = length(var.subnet_ids) == 0 || var.vpc_id != null
    error_message = "subnet_ids is set but vpc_id is not: name the VPC of those subnets."
  }
}

variable "enable_vpc_endpoints" {
  description = "Enable VPC endpoints for AWS services the functions call (RDS, S3 gateway, SNS, CloudWatch, CloudWatch Logs, Step Functions, KMS, STS, SQS, EventBridge Scheduler), in vpc_id: the module creates those not named in existing_vpc_endpoint_services."
  type        = bool
  default     = false

  validation {
    condition     = !var.enable_vpc_endpoints || var.vpc_id != null
    error_message = "enable_vpc_endpoints is true but vpc_id is not set: endpoints are created in the functions' VPC."
  }
}

variable "existing_vpc_endpoint_services" {
  description = "Services of enable_vpc_endpoints that already have an endpoint in vpc_id (central endpoints, or another instance of this module in the VPC): the module creates endpoints for the others only. AWS refuses a second private-DNS interface endpoint for a service in a VPC, and a second S3 gateway route in a route table. Any of rds, sns, monitoring, logs, states, kms, sts, sqs, scheduler, s3."
  type        = set(string)
  default     = []

  validation {
    condition     = length(setsubtract(var.existing_vpc_endpoint_services, ["rds", "sns", "monitoring", "logs", "states", "kms", "sts", "sqs", "scheduler", "s3"])) == 0
    error_message = "existing_vpc_endpoint_services may hold only rds, sns, monitoring, logs, states, kms, sts, sqs, scheduler and s3 (the services the functions call)."
  }

  validation {
    condition     = var.enable_vpc_endpoints || length(var.existing_vpc_endpoint_services) == 0
    error_message = "existing_vpc_endpoint_services is set but enable_vpc_endpoints is false: it names the endpoints the module need not create."
  }
}

variable "vpc_endpoint_security_group_ids" {
  description = "Security groups of the VPC's existing interface endpoints (a central team's, or another instance's vpc_endpoint_security_group_id output). The module admits its functions' HTTPS into each (one ingress rule per group, removed on destroy) and gives them to the endpoints it creates, instead of a group of its own."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.vpc_endpoint_security_group_ids : can(regex("^sg-[0-9a-f]{8,17}$", id))])
    error_message = "Each vpc_endpoint_security_group_ids entry must be a security group id such as sg-0abc1234def567890."
  }

  validation {
    condition     = var.enable_vpc_endpoints || length(var.vpc_endpoint_security_group_ids) == 0
    error_message = "vpc_endpoint_security_group_ids is set but enable_vpc_endpoints is false: the groups are those of the VPC's endpoints."
  }
}

variable "lambda_security_group_ids" {
  description = "Security groups for the functions, instead of the one the module creates (which allows HTTPS out only). They must allow HTTPS out to the endpoints or the internet."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.lambda_security_group_ids : can(regex("^sg-[0-9a-f]{8,17}$", id))])
    error_message = "Each lambda_security_group_ids entry must be a security group id such as sg-0abc1234def567890."
  }

  validation {
    condition     = var.vpc_id != null || length(var.lambda_security_group_ids) == 0
    error_message = "lambda_security_group_ids is set but vpc_id is not: the groups belong to the functions' VPC."
  }
}

variable "project_tag_key" {
  description = "Key of the tag that carries project_name on every resource and snapshot (Project), for organisations whose tag policy owns that key."
  type        = string
  default     = "Project"

  validation {
    condition     = can(regex("^[\\p{L}\\p{N}\\s_.:/=+@-]{1,128}$", var.project_tag_key)) && !startswith(lower(var.project_tag_key), "aws:") && !startswith(var.project_tag_key, "database-backup:") && !contains(["ManagedBy"], var.project_tag_key)
    error_message = "project_tag_key must be a tag key of 1-128 letters, digits, spaces and _ . : / = + - @, not starting with aws: or database-backup:, and not ManagedBy."
  }
}

variable "environment_tag_key" {
  description = "Key of the tag that carries environment on every resource and snapshot (Environment), for organisations whose tag policy owns that key."
  type        = string
  default     = "Environment"

  validation {
    condition     = can(regex("^[\\p{L}\\p{N}\\s_.:/=+@-]{1,128}$", var.environment_tag_key)) && !startswith(lower(var.environment_tag_key), "aws:") && !startswith(var.environment_tag_key, "database-backup:") && !contains(["ManagedBy", var.project_tag_key], var.environment_tag_key)
    error_message = "environment_tag_key must be a tag key of 1-128 letters, digits, spaces and _ . : / = + - @, not starting with aws: or database-backup:, and neither ManagedBy nor project_tag_key."
  }
}

variable "additional_tags" {
  description = "Tags added to every resource and to every snapshot the module creates. Snapshots also get the provider's default_tags (these win over them; the module's own project and environment tags (project_tag_key, environment_tag_key) and database-backup:* keys win over both)."
  type        = map(string)
  default     = {}

  validation {
    condition     = length(var.additional_tags) <= 43
    error_message = "additional_tags may hold at most 43 tags: RDS allows 50 per snapshot and the module sets 7 itself."
  }

  validation {
    condition = alltrue([
      for key, value in var.additional_tags :
      length(key) >= 1 && length(key) <= 128 && length(value) <= 256 &&
      !startswith(lower(key), "aws:") && !startswith(lower(key), "rds:") &&
      !contains([var.project_tag_key, var.environment_tag_key], key) && !startswith(key, "database-backup:")
    ])
    error_message = "additional_tags keys must be 1-128 characters, values at most 256; keys may not start with aws: or rds:, and ${var.project_tag_key}, ${var.environment_tag_key} (project_tag_key, environment_tag_key) and database-backup:* are set by the module."
  }
}

# Beyond the spec: what the design needs.

variable "rds_cluster_ids" {
  description = "Aurora DB cluster identifiers to back up with cluster snapshots, alongside rds_instance_ids."
  type        = list(string)
  default     = []

  validation {
    condition = alltrue([
      for id in var.rds_cluster_ids :
      can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,62}$", id)) && !strcontains(id, "--") && !endswith(id, "-")
    ])
    error_message = "Each rds_cluster_ids entry must be an RDS identifier: 1-63 letters, digits and hyphens, starting with a letter, without two consecutive hyphens or a trailing hyphen."
  }
}

variable "enable_s3_export" {
  description = "Export every new snapshot to the S3 bucket (Parquet, encrypted with the KMS key). RDS charges per GB of snapshot exported."
  type        = bool
  default     = true
}

variable "s3_export_tiers" {
  description = "Export only the snapshot that represents its period in one of these tiers (daily, weekly, monthly, yearly; calendar periods in UTC, ISO weeks): the first of the period, or a later one when the first one's export failed. [] exports every snapshot. A compliance archive that needs a snapshot a month pays RDS's export fee (per GB of snapshot) twelve times a year instead of every day."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for tier in var.s3_export_tiers : contains(["daily", "weekly", "monthly", "yearly"], tier)])
    error_message = "s3_export_tiers may only name daily, weekly, monthly and yearly."
  }
}

variable "min_snapshots_to_keep" {
  description = "Prune never deletes the newest this-many snapshots of a database, whatever their age."
  type        = number
  default     = 3

  validation {
    condition     = var.min_snapshots_to_keep == floor(var.min_snapshots_to_keep) && var.min_snapshots_to_keep >= 1 && var.min_snapshots_to_keep <= 1000
    error_message = "min_snapshots_to_keep must be a whole number from 1 to 1000."
  }
}

variable "retention_policy" {
  description = "Grandfather-father-son retention in place of backup_retention_days: how many daily, weekly, monthly and yearly snapshots each database keeps, e.g. { daily = 7, weekly = 4, monthly = 12, yearly = 7 }. Calendar periods in UTC, ISO weeks; the first snapshot of a period represents it; a tier keeps the newest periods that have a snapshot. Prune tags each kept snapshot with its tiers. null: keep by age (backup_retention_days)."
  type        = map(number)
  default     = null

  validation {
    condition     = var.retention_policy == null || alltrue([for tier in keys(coalesce(var.retention_policy, {})) : contains(["daily", "weekly", "monthly", "yearly"], tier)])
    error_message = "retention_policy may only count daily, weekly, monthly and yearly snapshots (an unknown tier name is refused, not ignored)."
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

variable "copy_retention_policy" {
  description = "The same for the cross-region copies; null: as retention_policy (or backup_retention_days) in the source region."
  type        = map(number)
  default     = null

  validation {
    condition     = var.copy_retention_policy == null || alltrue([for tier in keys(coalesce(var.copy_retention_policy, {})) : contains(["daily", "weekly", "monthly", "yearly"], tier)])
    error_message = "copy_retention_policy may only count daily, weekly, monthly and yearly snapshots (an unknown tier name is refused, not ignored)."
  }

  validation {
    condition     = var.copy_retention_policy == null || alltrue([for count in values(coalesce(var.copy_retention_policy, {})) : count == floor(count) && count >= 0])
    error_message = "copy_retention_policy counts must be whole numbers, 0 or more."
  }

  validation {
    condition     = var.copy_retention_policy == null || anytrue([for count in values(coalesce(var.copy_retention_policy, {})) : count > 0])
    error_message = "copy_retention_policy keeps nothing: give at least one of daily, weekly, monthly, yearly a count above 0 (or leave it null)."
  }

  validation {
    condition = var.copy_retention_policy == null || alltrue([
      for tier, most in { daily = 36500, weekly = 5200, monthly = 1200, yearly = 100 } : lookup(coalesce(var.copy_retention_policy, {}), tier, 0) <= most
    ])
    error_message = "copy_retention_policy keeps more than a century: at most 36500 daily, 5200 weekly, 1200 monthly, 100 yearly."
  }
}

variable "prune_guard_fraction" {
  description = "A run that would delete more than this fraction of a database's snapshots (a retention change, or a typo in one) deletes nothing unless its execution input sets confirm_retention_change = true. One snapshot may always go. 1: no guard."
  type        = number
  default     = 0.5

  validation {
    condition     = var.prune_guard_fraction > 0 && var.prune_guard_fraction <= 1
    error_message = "prune_guard_fraction must be above 0 and at most 1."
  }
}

variable "prune_dry_run" {
  description = "Prune reports what it would delete (in the notification) without deleting anything."
  type        = bool
  default     = false
}

variable "adopt_snapshots_managed_by" {
  description = "Managed-by tag values of earlier module instances whose snapshots this one takes over: retention prunes them by its own rules (the newest min_snapshots_to_keep of each database always stay) and they count as backups for SnapshotAge. For an upgrade from 1.0 give its value, PROJECT-ENVIRONMENT; docs/operations.md lists an old instance's snapshots."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for value in var.adopt_snapshots_managed_by : can(regex("^[\\p{L}\\p{N}\\s_.:/=+@-]{1,256}$", value))])
    error_message = "adopt_snapshots_managed_by holds RDS tag values: 1-256 letters, digits, spaces and _ . : / = + - @."
  }
}

variable "max_concurrent_databases" {
  description = "How many databases one run backs up at the same time (the state machine's Map concurrency)."
  type        = number
  default     = 5

  validation {
    condition     = var.max_concurrent_databases == floor(var.max_concurrent_databases) && var.max_concurrent_databases >= 1 && var.max_concurrent_databases <= 40
    error_message = "max_concurrent_databases must be a whole number from 1 to 40 (an inline Map runs at most 40 iterations at once)."
  }
}

variable "poll_interval_seconds" {
  description = "The shortest wait, in seconds, between status checks of a snapshot or copy being created (each check says when to check next, from RDS's progress)."
  type        = number
  default     = 60

  validation {
    condition     = var.poll_interval_seconds == floor(var.poll_interval_seconds) && var.poll_interval_seconds >= 5 && var.poll_interval_seconds <= 3600
    error_message = "poll_interval_seconds must be a whole number from 5 to 3600."
  }
}

variable "export_poll_interval_seconds" {
  description = "The shortest wait, in seconds, between status checks of an S3 export (each check says when to check next, from RDS's progress)."
  type        = number
  default     = 300

  validation {
    condition     = var.export_poll_interval_seconds == floor(var.export_poll_interval_seconds) && var.export_poll_interval_seconds >= 5 && var.export_poll_interval_seconds <= 3600
    error_message = "export_poll_interval_seconds must be a whole number from 5 to 3600."
  }
}

variable "wait_timeout_seconds" {
  description = "How long a run waits for a snapshot, a copy and an export before it reports the database as failed (WaitTimedOut)."
  type = object({
    snapshot = optional(number, 21600)
    copy     = optional(number, 21600)
    export   = optional(number, 86400)
  })
  default = {}

  validation {
    condition = alltrue([
      for seconds in values(var.wait_timeout_seconds) : seconds == floor(seconds) && seconds >= 60 && seconds <= 604800
    ])
    error_message = "wait_timeout_seconds values must be whole numbers of seconds from 60 to 604800 (7 days)."
  }
}

variable "cross_region_kms_key_arn" {
  description = "Customer-managed KMS key in cross_region_destination for the copies. When null, copies use the AWS managed RDS key of that region (alias/aws/rds)."
  type        = string
  default     = null

  validation {
    condition     = var.cross_region_kms_key_arn == null || can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:(key/[0-9a-z-]+|alias/[A-Za-z0-9/_-]+)$", var.cross_region_kms_key_arn))
    error_message = "cross_region_kms_key_arn must be a KMS key or alias ARN in the destination region, such as arn:aws:kms:us-west-2:123456789012:key/..."
  }

  validation {
    condition     = var.cross_region_kms_key_arn == null || try(split(":", var.cross_region_kms_key_arn)[3] == var.cross_region_destination, false)
    error_message = "cross_region_kms_key_arn must be a key in cross_region_destination: KMS keys are regional."
  }
}

variable "cross_region_option_groups" {
  description = "For Oracle and SQL Server snapshots taken with persistent or permanent options (TDE, Oracle Timezone or OLS): source option group name => the name of an option group in cross_region_destination with the same options, which RDS requires to copy them across regions. A snapshot that needs one and has none here is not copied, with a warning in the run's summary."
  type        = map(string)
  default     = {}

  validation {
    condition = alltrue([for name in concat(keys(var.cross_region_option_groups), values(var.cross_region_option_groups)) :
    can(regex("^[A-Za-z](-?[A-Za-z0-9])*$", name)) && length(name) <= 255])
    error_message = "Each cross_region_option_groups name must be an RDS option group name: 1-255 letters, digits and hyphens, starting with a letter, without two consecutive hyphens or a trailing hyphen."
  }
}

variable "lambda_architecture" {
  description = "Instruction set of the functions: x86_64, or arm64 (build with scripts/build-lambdas --arm64)."
  type        = string
  default     = "x86_64"

  validation {
    condition     = contains(["x86_64", "arm64"], var.lambda_architecture)
    error_message = "lambda_architecture must be x86_64 or arm64."
  }
}

variable "lambda_package_dir" {
  description = "Directory holding the function zips, DIR/backup-FUNCTION/bootstrap.zip, as scripts/build-lambdas writes them and the release's lambda/ holds them (null: the module's own lambda/)."
  type        = string
  default     = null
}

variable "lambda_s3_bucket" {
  description = "S3 bucket (in the module's region) holding the function zips at lambda_s3_key_prefix, laid out as the release's lambda/ directory: backup-FUNCTION/bootstrap.zip and SHA256SUMS.txt (null: the zips are files; see lambda_package_dir)."
  type        = string
  default     = null

  validation {
    condition     = var.lambda_s3_bucket == null || can(regex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$", var.lambda_s3_bucket))
    error_message = "lambda_s3_bucket must be an S3 bucket name: 3-63 lowercase letters, digits, dots and hyphens, starting and ending with a letter or digit."
  }
  validation {
    condition     = var.lambda_s3_bucket == null || var.lambda_package_dir == null
    error_message = "lambda_s3_bucket and lambda_package_dir both name where the zips are: set one of them."
  }
}

variable "lambda_s3_key_prefix" {
  description = "Key prefix of the zips in lambda_s3_bucket, ending in / (for example database-backup/1.0.0/), or empty."
  type        = string
  default     = ""

  validation {
    condition     = var.lambda_s3_key_prefix == "" || (endswith(var.lambda_s3_key_prefix, "/") && !startswith(var.lambda_s3_key_prefix, "/"))
    error_message = "lambda_s3_key_prefix must be empty or end in / and not start with one, for example database-backup/1.0.0/."
  }
}

variable "log_group_class" {
  description = "Class of the functions' log groups: STANDARD, or INFREQUENT_ACCESS (cheaper ingestion, a subset of CloudWatch Logs features; a log group's class cannot change, so changing this replaces them). The state machines' log groups stay STANDARD."
  type        = string
  default     = "STANDARD"

  validation {
    condition     = contains(["STANDARD", "INFREQUENT_ACCESS"], var.log_group_class)
    error_message = "log_group_class must be STANDARD or INFREQUENT_ACCESS."
  }
}

variable "state_machine_log_level" {
  description = "What the state machines log (with enable_cloudwatch_logs): ALL (every state's events), ERROR, FATAL or OFF."
  type        = string
  default     = "ALL"

  validation {
    condition     = contains(["ALL", "ERROR", "FATAL", "OFF"], var.state_machine_log_level)
    error_message = "state_machine_log_level must be ALL, ERROR, FATAL or OFF."
  }
}

variable "state_machine_log_execution_data" {
  description = "Whether the state machines' logs hold each state's input and output (database identifiers, snapshot and export names, errors): more to read when debugging, more log volume and cost."
  type        = bool
  default     = false
}

variable "enable_xray_tracing" {
  description = "Trace the functions and the state machines with AWS X-Ray (the roles get the X-Ray actions only when on)."
  type        = bool
  default     = true
}

variable "create_dashboard" {
  description = "Create the CloudWatch dashboard of the backups."
  type        = bool
  default     = true
}

variable "alarm_sns_topic_arn" {
  description = "SNS topic for the alarms (ALARM and OK), when they should page elsewhere than the run summaries (null: the notification topic)."
  type        = string
  default     = null

  validation {
    condition     = var.alarm_sns_topic_arn == null || can(regex("^arn:aws[a-z-]*:sns:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]{1,256}$", var.alarm_sns_topic_arn))
    error_message = "alarm_sns_topic_arn must be an SNS topic ARN such as arn:aws:sns:us-east-1:123456789012:pager (a standard topic: CloudWatch alarms cannot publish to FIFO topics)."
  }
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the backup metrics (BackupSuccess, BackupFailure, BackupDuration, SnapshotAge, RestorableLag, BackupRetentionDays, ExportWarnings, RetainedSnapshotGB, RetainedExportGB, EstimatedMonthlyCost). Every metric carries the dimension BackupInstance (the managed_by_tag_value output), so instances may share a namespace without their alarms moving each other."
  type        = string
  default     = "CustomMetrics/DatabaseBackup"

  validation {
    condition     = can(regex("^[A-Za-z0-9.\\-_/#:]{1,255}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be 1-255 letters, digits and . - _ / # : characters, and not start with AWS/."
  }
}

variable "snapshot_age_alarm_hours" {
  description = "The no-recent-backup alarm fires when the newest snapshot is older than this (null: the schedule's period plus a quarter, at least 2 hours)."
  type        = number
  default     = null

  validation {
    condition     = var.snapshot_age_alarm_hours == null || try(var.snapshot_age_alarm_hours >= 1, false)
    error_message = "snapshot_age_alarm_hours must be at least 1."
  }
}

variable "restorable_lag_alarm_minutes" {
  description = "The restorable-lag alarm fires when a database's latest point-in-time restorable time (LatestRestorableTime, typically within 5 minutes of now) lags the hourly measurement by more than this many minutes."
  type        = number
  default     = 15

  validation {
    condition     = try(var.restorable_lag_alarm_minutes >= 10 && var.restorable_lag_alarm_minutes <= 10080, false)
    error_message = "restorable_lag_alarm_minutes must be between 10 (above RDS's usual 5 minutes of lag) and 10080 (a week)."
  }
}

variable "manage_automated_backups" {
  description = "Opt-in: as each run ends, its databases get this automated backup retention (retention_days, 1-35) and backup_window as their RDS backup window, through ModifyDBInstance (ModifyDBCluster for Aurora) with ApplyImmediately off: turning automated backups on waits for the database's maintenance window, other changes apply as soon as RDS can. A longer retention a DBA set (or pending) is kept unless shorten_retention is true; read replicas and Aurora cluster members are left alone. Start backup_schedule outside backup_window (the plan warns otherwise). The run summary reports what each database got. null: the module never modifies a database."
  type = object({
    retention_days    = number
    shorten_retention = optional(bool, false)
  })
  default = null

  validation {
    condition     = var.manage_automated_backups == null || try(var.manage_automated_backups.retention_days >= 1 && var.manage_automated_backups.retention_days <= 35 && floor(var.manage_automated_backups.retention_days) == var.manage_automated_backups.retention_days, false)
    error_message = "manage_automated_backups.retention_days must be a whole number of days from 1 to 35 (RDS's range; 0 would turn automated backups off)."
  }

  validation {
    # IAM cannot hold ModifyDBInstance to identifier patterns: only to names, or to a tag.
    condition     = var.manage_automated_backups == null || length(var.db_identifier_patterns) == 0 || length(var.selection_tags) > 0
    error_message = "manage_automated_backups with db_identifier_patterns needs selection_tags too: IAM can limit the modification of databases to names or tags, not to identifier patterns, and would otherwise let the module modify every database in the region."
  }
}

variable "vault" {
  description = "Copies of every snapshot in a vault account, out of reach of this one (docs/vault.md): the vault account's id, its region (null: this region), and the vault's KMS key and the role the vault function assumes there (the outputs kms_key_arn and role_arn of the module's vault part, modules/vault, applied in that account), with the external id the role's trust asks for. For a vault in another region that takes Aurora clusters, cluster_share_kms_key_arn: a key of this account in the vault's region (modules/share-key applied there), with which a cluster snapshot is copied there before it is shared. drill_role_arn: the vault's drill role (modules/vault with allow_restore_drills, output drill_role_arn), through which restore_drill with copy = \"vault\" restores the vault's copies in the vault account, and the drills' sweep deletes what they leave there. null: no vault."
  type = object({
    account_id  = string
    region      = optional(string)
    kms_key_arn = string
    role_arn    = string
    external_id = optional(string)
    # A vault in another region that takes Aurora clusters: a key of this account there.
    cluster_share_kms_key_arn = optional(string)
    # Restore drills of the vault's copies (restore_drill.copy = "vault"): modules/vault's drill_role_arn.
    drill_role_arn = optional(string)
  })
  default = null

  validation {
    condition     = var.vault == null || can(regex("^[0-9]{12}$", var.vault.account_id))
    error_message = "vault.account_id must be an AWS account id: 12 digits."
  }

  validation {
    condition     = try(var.vault.region == null || can(regex("^[a-z]{2}(-gov|-iso[a-z]*)?-[a-z]+-[0-9]$", var.vault.region)), true)
    error_message = "vault.region must be an AWS region name such as eu-west-1 (or null: this region)."
  }

  validation {
    condition     = try(can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", var.vault.role_arn)) && split(":", var.vault.role_arn)[4] == var.vault.account_id, var.vault == null)
    error_message = "vault.role_arn must be a role of the vault account (arn:aws:iam::<vault.account_id>:role/...): the role_arn output of modules/vault."
  }

  validation {
    condition     = try(can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-z-]+$", var.vault.kms_key_arn)) && split(":", var.vault.kms_key_arn)[4] == var.vault.account_id, var.vault == null)
    error_message = "vault.kms_key_arn must be a key ARN of the vault account (arn:aws:kms:<region>:<vault.account_id>:key/...): the kms_key_arn output of modules/vault."
  }

  validation {
    condition     = try(var.vault.external_id == null || (length(var.vault.external_id) >= 2 && length(var.vault.external_id) <= 1224 && can(regex("^[A-Za-z0-9+=,.@:/_-]+$", var.vault.external_id))), true)
    error_message = "vault.external_id must be 2-1224 letters, digits and + = , . @ : / _ - characters (STS's rule for an external id)."
  }

  validation {
    condition     = try(var.vault.drill_role_arn == null ? true : can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:role/", var.vault.drill_role_arn)) && split(":", var.vault.drill_role_arn)[4] == var.vault.account_id, var.vault == null)
    error_message = "vault.drill_role_arn must be a role of the vault account (arn:aws:iam::<vault.account_id>:role/...): the drill_role_arn output of modules/vault with allow_restore_drills."
  }

  validation {
    condition     = try(var.vault.cluster_share_kms_key_arn == null || (can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[0-9a-z-]+$", var.vault.cluster_share_kms_key_arn)) && coalesce(var.vault.region, local.region) != local.region && split(":", var.vault.cluster_share_kms_key_arn)[3] == var.vault.region && split(":", var.vault.cluster_share_kms_key_arn)[4] == local.account), true)
    error_message = "vault.cluster_share_kms_key_arn must be a key ARN of this (the source) account in vault.region (arn:aws:kms:<vault.region>:<this account>:key/...): the key_arn output of modules/share-key applied there. It is only for a vault in another region than this one."
  }
}

variable "restore_drill" {
  description = "Opt-in scheduled restore drills (docs/operations.md, Restore drills): on schedule (UTC; default weekly, Sunday 05:00) the <prefix>-drill state machine restores each drilled database's newest backup (copy: \"source\", the module's region; \"copy\", the cross-region copies; or \"vault\", the vault account's copies, restored in the vault account through vault.drill_role_arn) to a new DB instance (or Aurora DB cluster, to which it adds a writer DB instance <cluster>-1 once the cluster is available) named drill-<hash>-<db>-<MMDDHHMM>, not publicly accessible, in subnet_group_name with security_group_ids (null and []: the original's, which a restore in the copy region or the vault does not have; with copy = \"vault\", the vault account's), of instance_class (null: the original's, an Aurora cluster's writer's; needed with copy = \"copy\" or \"vault\"); waits for it (and a cluster's writer) at most max_wait_minutes; checks its status, engine and version, allocated storage and encryption against the snapshot; keeps it keep_minutes; deletes it without a final snapshot, also when the restore failed or timed out; and reports the recovery time against rto_minutes (metrics RestoreTestSuccess, RestoreTestFailure, RestoreTime, alarms, SNS, Slack). databases: the ones drilled (empty: every one with an available backup of the module); random_count: N of them at random per drill (0: all). An hourly sweep deletes drill databases left past their time by a drill that did not finish. sql_probe (copy = \"source\" only; RDS for PostgreSQL, MySQL and MariaDB, Aurora PostgreSQL and Aurora MySQL through the writer): each database named in secret_arns is also queried once available by the probe function, in subnet_ids with security_group_ids (which the drill databases' security groups must let in on the database port, with a route to Secrets Manager): it logs in with the secret's username and password (JSON, as RDS and Secrets Manager rotation write it; secret_kms_key_arns: the customer managed keys of those secrets) over TLS verified against the RDS certificate authorities, and runs query, one statement, in a read-only transaction, rolled back; a failure fails the drill. null: no drills."
  type = object({
    schedule           = optional(string, "cron(0 5 ? * SUN *)")
    databases          = optional(list(string), [])
    random_count       = optional(number, 0)
    copy               = optional(string, "source")
    instance_class     = optional(string)
    subnet_group_name  = optional(string)
    security_group_ids = optional(list(string), [])
    rto_minutes        = optional(number, 60)
    keep_minutes       = optional(number, 0)
    max_wait_minutes   = optional(number, 240)
    sql_probe = optional(object({
      secret_arns             = map(string)
      subnet_ids              = list(string)
      security_group_ids      = list(string)
      query                   = optional(string, "SELECT 1")
      connect_timeout_seconds = optional(number, 10)
      secret_kms_key_arns     = optional(list(string), [])
    }))
  })
  default = null

  validation {
    condition = var.restore_drill == null || try(
      can(regex("^cron\\(\\S+ \\S+ \\S+ \\S+ \\S+ \\S+\\)$", var.restore_drill.schedule)) ||
      can(regex("^rate\\((1 (minute|hour|day)|([2-9]|[1-9][0-9]+) (minutes|hours|days))\\)$", var.restore_drill.schedule)),
      false
    )
    error_message = "restore_drill.schedule must be an EventBridge schedule expression: cron(minutes hours day-of-month month day-of-week year), for example cron(0 5 ? * SUN *), or rate(N unit), for example rate(7 days)."
  }

  validation {
    condition     = var.restore_drill == null || try(contains(["source", "copy", "vault"], var.restore_drill.copy), false)
    error_message = "restore_drill.copy must be \"source\" (the newest backup in the module's region), \"copy\" (the newest cross-region copy) or \"vault\" (the newest copy in the vault account)."
  }

  validation {
    # A conditional, not ||: HCL evaluates both sides, and var.vault may be null.
    condition     = var.restore_drill == null || try(var.restore_drill.copy != "vault" ? true : try(var.vault.drill_role_arn, null) != null && var.restore_drill.instance_class != null, false)
    error_message = "restore_drill.copy = \"vault\" needs vault.drill_role_arn (apply modules/vault with allow_restore_drills = true and give its drill_role_arn output), and restore_drill.instance_class: the original database is not in the vault account to take its instance class from."
  }

  validation {
    condition     = var.restore_drill == null || try(var.restore_drill.copy != "copy" || (var.enable_cross_region_copy && var.restore_drill.instance_class != null), false)
    error_message = "restore_drill.copy = \"copy\" needs enable_cross_region_copy, and restore_drill.instance_class: the original database is not in the copy region to take its instance class from."
  }

  validation {
    condition = var.restore_drill == null || try(alltrue([
      for id in var.restore_drill.databases :
      can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,62}$", id)) && !strcontains(id, "--") && !endswith(id, "-")
    ]), false)
    error_message = "Each restore_drill.databases entry must be an RDS identifier: 1-63 letters, digits and hyphens, starting with a letter, without two consecutive hyphens or a trailing hyphen."
  }

  validation {
    condition = var.restore_drill == null || try(
      floor(var.restore_drill.random_count) == var.restore_drill.random_count && var.restore_drill.random_count >= 0 &&
      floor(var.restore_drill.rto_minutes) == var.restore_drill.rto_minutes && var.restore_drill.rto_minutes >= 1 && var.restore_drill.rto_minutes <= 10080 &&
      floor(var.restore_drill.keep_minutes) == var.restore_drill.keep_minutes && var.restore_drill.keep_minutes >= 0 && var.restore_drill.keep_minutes <= 1440 &&
      floor(var.restore_drill.max_wait_minutes) == var.restore_drill.max_wait_minutes && var.restore_drill.max_wait_minutes >= 10 && var.restore_drill.max_wait_minutes <= 1440,
      false
    )
    error_message = "restore_drill needs whole numbers: random_count 0 or more, rto_minutes from 1 to 10080 (a week), keep_minutes from 0 to 1440 (a day), max_wait_minutes from 10 to 1440."
  }

  validation {
    condition     = var.restore_drill == null || try(var.restore_drill.instance_class == null || can(regex("^db\\.[a-z0-9-]+\\.[a-z0-9-]+$", var.restore_drill.instance_class)), false)
    error_message = "restore_drill.instance_class must be an RDS instance class such as db.t4g.micro, or null (the original's)."
  }

  validation {
    condition     = var.restore_drill == null || try(alltrue([for id in var.restore_drill.security_group_ids : can(regex("^sg-[0-9a-f]{8,17}$", id))]), false)
    error_message = "restore_drill.security_group_ids must be VPC security group ids (sg- and 8 or 17 hex digits)."
  }

  validation {
    condition     = try(var.restore_drill.sql_probe, null) == null || try(var.restore_drill.copy == "source", false)
    error_message = "restore_drill.sql_probe needs copy = \"source\": the probe function runs in the module's region and account, and reaches no drill database restored in the copy region or the vault."
  }

  validation {
    condition = try(var.restore_drill.sql_probe, null) == null || try(length(var.restore_drill.sql_probe.secret_arns) > 0 && alltrue([
      for db, arn in var.restore_drill.sql_probe.secret_arns :
      can(regex("^[a-zA-Z][a-zA-Z0-9-]{0,62}$", db)) && can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$", arn))
    ]), false)
    error_message = "restore_drill.sql_probe.secret_arns must map at least one database identifier to the ARN of a Secrets Manager secret (arn:aws:secretsmanager:<region>:<account>:secret:<name>)."
  }

  validation {
    condition = try(var.restore_drill.sql_probe, null) == null || try(
      length(var.restore_drill.sql_probe.subnet_ids) > 0 && alltrue([for id in var.restore_drill.sql_probe.subnet_ids : can(regex("^subnet-[0-9a-f]{8,17}$", id))]) &&
      length(var.restore_drill.sql_probe.security_group_ids) > 0 && length(var.restore_drill.sql_probe.security_group_ids) <= 5 &&
      alltrue([for id in var.restore_drill.sql_probe.security_group_ids : can(regex("^sg-[0-9a-f]{8,17}$", id))]),
      false
    )
    error_message = "restore_drill.sql_probe needs subnet_ids (subnet- and 8 or 17 hex digits, at least one) and security_group_ids (sg- and 8 or 17 hex digits, one to five): the probe function runs in the VPC of the drill databases."
  }

  validation {
    condition = try(var.restore_drill.sql_probe, null) == null || try(
      length(trimspace(var.restore_drill.sql_probe.query)) > 0 && length(var.restore_drill.sql_probe.query) <= 1024 &&
      floor(var.restore_drill.sql_probe.connect_timeout_seconds) == var.restore_drill.sql_probe.connect_timeout_seconds &&
      var.restore_drill.sql_probe.connect_timeout_seconds >= 1 && var.restore_drill.sql_probe.connect_timeout_seconds <= 60 &&
      alltrue([for arn in var.restore_drill.sql_probe.secret_kms_key_arns : can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/(mrk-)?[0-9a-f-]{32,36}$", arn))]),
      false
    )
    error_message = "restore_drill.sql_probe needs a query of 1 to 1024 characters (one statement: it travels in the drill function's environment, which Lambda holds to 4 KB), connect_timeout_seconds a whole number from 1 to 60, and secret_kms_key_arns KMS key ARNs."
  }

  validation {
    # The probe may take connect_timeout_seconds to connect and 60 s to query, after reading
    # the secret (with the SDK's retries): Lambda would end it first, a timeout instead of an answer.
    # Conditionals, not try(): sql_probe holds the secrets' ARNs, often unknown at plan.
    condition     = var.restore_drill == null ? true : var.restore_drill.sql_probe == null ? true : var.lambda_timeout >= var.restore_drill.sql_probe.connect_timeout_seconds + 90
    error_message = "lambda_timeout must be at least restore_drill.sql_probe.connect_timeout_seconds plus 90 seconds (60 for the probe's query, 30 for reading its secret): Lambda would stop the probe before it could answer."
  }
}
