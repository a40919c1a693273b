# The backup bucket: where RDS writes snapshot exports (Parquet), under
# <project>/<environment>/<database>/<date>/<export task>/.

locals {
  # Bucket names are worldwide: the default carries the instance's hash (account, project,
  # environment, region). A bucket keeps the name it was created with (ignore_changes below):
  # renaming one means a new, empty bucket; see the check further down.
  bucket_name     = coalesce(var.s3_bucket_name, "${local.prefix}-backups-${local.instance_hash}")
  log_bucket_name = "${local.bucket_name}-logs"
  log_prefix      = "s3-access/${aws_s3_bucket.backup.bucket}/"

  # With s3_storage_class other than STANDARD, the first transition goes to that class.
  first_transition_class = var.s3_storage_class == "STANDARD" ? "STANDARD_IA" : var.s3_storage_class
  transitions = [
    for step in [
      { days = var.s3_lifecycle_rules.transition_to_ia_days, storage_class = local.first_transition_class },
      { days = var.s3_lifecycle_rules.transition_to_glacier_days, storage_class = "GLACIER" },
      { days = var.s3_lifecycle_rules.transition_to_deep_archive_days, storage_class = "DEEP_ARCHIVE" },
    ] : step if step.days != null
  ]
}

resource "aws_s3_bucket" "backup" {
  # checkov:skip=CKV_AWS_144: cross-region safety comes from RDS snapshot copies (enable_cross_region_copy), not from replicating exports
  # checkov:skip=CKV2_AWS_62: nothing consumes object events; each run's result goes to SNS from the notify function
  bucket        = local.bucket_name
  force_destroy = var.s3_force_destroy
  tags          = local.tags

  # The exports are encrypted with the module's key: a destroy that stops at this bucket
  # (not empty, s3_force_destroy off) must stop before the key is scheduled for deletion.
  depends_on = [aws_kms_key.backup, aws_kms_key.deletable]

  # A bucket applied with an earlier default name (1.0: <prefix>-db-backups-<account>) keeps it.
  lifecycle {
    ignore_changes = [bucket]
  }
}

check "bucket_keeps_its_name" {
  assert {
    condition     = aws_s3_bucket.backup.bucket == local.bucket_name
    error_message = "The backup bucket keeps its name ${aws_s3_bucket.backup.bucket}, not the configured ${local.bucket_name}: S3 cannot rename a bucket, and a new one would leave the exports behind. Set s3_bucket_name = \"${aws_s3_bucket.backup.bucket}\" to say so in the configuration; docs/operations.md says how to move to a new bucket deliberately."
  }
}

resource "aws_s3_bucket_ownership_controls" "backup" {
  bucket = aws_s3_bucket.backup.id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "backup" {
  bucket                  = aws_s3_bucket.backup.id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "backup" {
  bucket = aws_s3_bucket.backup.id
  versioning_configuration {
    status = var.enable_s3_versioning ? "Enabled" : "Suspended"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "backup" {
  bucket = aws_s3_bucket.backup.id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm     = var.enable_s3_encryption ? "aws:kms" : "AES256"
      kms_master_key_id = var.enable_s3_encryption ? local.kms_key_arn : null
    }
    bucket_key_enabled = var.enable_s3_encryption
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "backup" {
  bucket = aws_s3_bucket.backup.id

  rule {
    id     = "backup-retention"
    status = "Enabled"
    filter {}

    dynamic "transition" {
      for_each = local.transitions
      content {
        days          = transition.value.days
        storage_class = transition.value.storage_class
      }
    }

    dynamic "expiration" {
      for_each = var.s3_lifecycle_rules.expiration_days == null ? [] : [var.s3_lifecycle_rules.expiration_days]
      content {
        days = expiration.value
      }
    }

    dynamic "noncurrent_version_expiration" {
      for_each = var.s3_lifecycle_rules.expiration_days == null ? [] : [var.s3_lifecycle_rules.expiration_days]
      content {
        noncurrent_days = noncurrent_version_expiration.value
      }
    }

    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.backup]
}

resource "aws_s3_bucket_policy" "backup" {
  bucket = aws_s3_bucket.backup.id
  policy = data.aws_iam_policy_document.backup_bucket.json

  depends_on = [aws_s3_bucket_public_access_block.backup]
}

data "aws_iam_policy_document" "backup_bucket" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.backup.arn, "${aws_s3_bucket.backup.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }

  statement {
    sid       = "DenyTlsOlderThan12"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.backup.arn, "${aws_s3_bucket.backup.arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "NumericLessThan"
      variable = "s3:TlsVersion"
      values   = ["1.2"]
    }
  }
}

# Terraform destroys a resource's dependents before the resource: without this guard a destroy
# would remove each bucket's policy, public access block, encryption, lifecycle, logging and
# versioning before S3 refuses to delete the bucket itself for holding exports. The guard depends
# on every other resource of the module, so a destroy reaches it first: the export function then
# looks into the buckets and, unless s3_force_destroy is on, fails while one holds an object
# version (BucketsHoldBackups): the destroy stops before it has changed anything. Create and
# update read the buckets the same way, which shows at apply time that the function can.
resource "aws_lambda_invocation" "bucket_guard" {
  function_name   = aws_lambda_function.backup["export"].function_name
  lifecycle_scope = "CRUD"
  input = jsonencode({
    buckets       = concat([aws_s3_bucket.backup.id], aws_s3_bucket.access_logs[*].id)
    force_destroy = var.s3_force_destroy
  })

  depends_on = [
    aws_s3_bucket_ownership_controls.backup,
    aws_s3_bucket_public_access_block.backup,
    aws_s3_bucket_versioning.backup,
    aws_s3_bucket_server_side_encryption_configuration.backup,
    aws_s3_bucket_lifecycle_configuration.backup,
    aws_s3_bucket_policy.backup,
    aws_s3_bucket_logging.backup,
    aws_s3_bucket_ownership_controls.access_logs,
    aws_s3_bucket_public_access_block.access_logs,
    aws_s3_bucket_versioning.access_logs,
    aws_s3_bucket_server_side_encryption_configuration.access_logs,
    aws_s3_bucket_lifecycle_configuration.access_logs,
    aws_s3_bucket_policy.access_logs,
    aws_kms_alias.backup,
    aws_iam_role_policy.export,
    aws_iam_role_policy.function,
    aws_iam_role_policy.schedule,
    aws_iam_role_policy.state_machine,
    aws_iam_role_policy.poll_scheduler,
    aws_scheduler_schedule_group.polls,
    aws_sfn_state_machine.workflow,
    aws_cloudwatch_event_target.schedule,
    aws_cloudwatch_event_target.run_ended_badly,
    aws_cloudwatch_event_target.snapshot_age,
    aws_lambda_permission.run_ended_badly,
    aws_lambda_permission.snapshot_age,
    aws_cloudwatch_metric_alarm.backup_failure,
    aws_cloudwatch_metric_alarm.executions_failed,
    aws_cloudwatch_metric_alarm.lambda_errors,
    aws_cloudwatch_metric_alarm.no_recent_backup,
    aws_cloudwatch_metric_alarm.restorable_lag,
    aws_cloudwatch_metric_alarm.automated_backups_off,
    aws_cloudwatch_dashboard.backup,
    aws_sns_topic_policy.notifications,
    aws_sns_topic_subscription.email,
    aws_secretsmanager_secret_version.slack_webhook,
    aws_vpc_endpoint.interface,
    aws_vpc_endpoint.s3,
    aws_vpc_security_group_ingress_rule.existing_endpoints,
    module.vault_share_key,
  ]
}

resource "aws_s3_bucket_logging" "backup" {
  count = var.enable_s3_access_logging ? 1 : 0

  bucket        = aws_s3_bucket.backup.id
  target_bucket = aws_s3_bucket.access_logs[0].id
  target_prefix = local.log_prefix

  # S3 checks that the log bucket's policy lets the logging service write.
  depends_on = [aws_s3_bucket_policy.access_logs]
}

# The access-log bucket. S3 server access logging cannot write to an SSE-KMS
# bucket, so this one uses SSE-S3.
resource "aws_s3_bucket" "access_logs" {
  # checkov:skip=CKV_AWS_145: S3 server access logging supports only SSE-S3 on the target bucket
  # checkov:skip=CKV_AWS_18: this is the access-log bucket; logging it to itself would loop
  # checkov:skip=CKV_AWS_144: access logs stay in the region of the bucket they describe
  # checkov:skip=CKV2_AWS_62: nothing consumes access-log object events
  count = var.enable_s3_access_logging ? 1 : 0

  bucket        = local.log_bucket_name
  force_destroy = var.s3_force_destroy
  tags          = local.tags

  # As the backup bucket: a log bucket applied with an earlier name keeps it.
  lifecycle {
    ignore_changes = [bucket]
  }
}

resource "aws_s3_bucket_ownership_controls" "access_logs" {
  count  = var.enable_s3_access_logging ? 1 : 0
  bucket = aws_s3_bucket.access_logs[0].id
  rule {
    object_ownership = "BucketOwnerEnforced"
  }
}

resource "aws_s3_bucket_public_access_block" "access_logs" {
  count                   = var.enable_s3_access_logging ? 1 : 0
  bucket                  = aws_s3_bucket.access_logs[0].id
  block_public_acls       = true
  block_public_policy     = true
  ignore_public_acls      = true
  restrict_public_buckets = true
}

resource "aws_s3_bucket_versioning" "access_logs" {
  count  = var.enable_s3_access_logging ? 1 : 0
  bucket = aws_s3_bucket.access_logs[0].id
  versioning_configuration {
    status = "Enabled"
  }
}

resource "aws_s3_bucket_server_side_encryption_configuration" "access_logs" {
  count  = var.enable_s3_access_logging ? 1 : 0
  bucket = aws_s3_bucket.access_logs[0].id
  rule {
    apply_server_side_encryption_by_default {
      sse_algorithm = "AES256"
    }
  }
}

resource "aws_s3_bucket_lifecycle_configuration" "access_logs" {
  count  = var.enable_s3_access_logging ? 1 : 0
  bucket = aws_s3_bucket.access_logs[0].id

  rule {
    id     = "access-log-retention"
    status = "Enabled"
    filter {}
    expiration {
      days = max(365, var.log_retention_days)
    }
    noncurrent_version_expiration {
      noncurrent_days = 30
    }
    abort_incomplete_multipart_upload {
      days_after_initiation = 7
    }
  }

  depends_on = [aws_s3_bucket_versioning.access_logs]
}

resource "aws_s3_bucket_policy" "access_logs" {
  count  = var.enable_s3_access_logging ? 1 : 0
  bucket = aws_s3_bucket.access_logs[0].id
  policy = data.aws_iam_policy_document.access_logs[0].json

  depends_on = [aws_s3_bucket_public_access_block.access_logs]
}

data "aws_iam_policy_document" "access_logs" {
  count = var.enable_s3_access_logging ? 1 : 0

  statement {
    sid       = "S3ServerAccessLogsFromTheBackupBucket"
    actions   = ["s3:PutObject"]
    resources = ["${aws_s3_bucket.access_logs[0].arn}/${local.log_prefix}*"]
    principals {
      type        = "Service"
      identifiers = ["logging.s3.amazonaws.com"]
    }
    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = [aws_s3_bucket.backup.arn]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["s3:*"]
    resources = [aws_s3_bucket.access_logs[0].arn, "${aws_s3_bucket.access_logs[0].arn}/*"]
    principals {
      type        = "*"
      identifiers = ["*"]
    }
    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}
