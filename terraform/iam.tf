# One role per function, each with only the calls its code makes.

locals {
  rds_arn = "arn:${local.partition}:rds"
  # The databases as RDS stores their identifiers (lowercase).
  database_ids = [for id in local.databases : lower(id)]

  # The snapshot function looks an identifier up as an instance, then as a cluster.
  database_arns = concat(
    [for id in local.database_ids : "${local.rds_arn}:${local.region}:${local.account}:db:${id}"],
    [for id in local.database_ids : "${local.rds_arn}:${local.region}:${local.account}:cluster:${id}"],
  )
  # Snapshot identifiers are <database>-<YYYYMMDD>-<HHMMSS>, in the source region and the copy region.
  # One ARN a database for both kinds: `*snapshot` is `snapshot` or `cluster-snapshot` (no other
  # RDS resource type ends so, and no name before the identifier holds a colon). A role's inline
  # policies share 10,240 characters, so each database's ARNs are what limits the list's length.
  own_snapshot_arns = {
    for region in local.snapshot_regions : region =>
    [for id in local.database_ids : "${local.rds_arn}:${region}:${local.account}:*snapshot:${id}-*"]
  }
  # Databases selected by tag or pattern, at each run: the region's instances and clusters,
  # scoped by the selection tags where there are any (aws:ResourceTag applies to both kinds,
  # Service Authorization Reference for Amazon RDS; a value of "*" is any value). Their
  # snapshots' names are unknown here: any snapshot of the region, created only with this
  # instance's managed-by tag, exported and copied only when it carries it.
  selected_database_arns = ["${local.rds_arn}:${local.region}:${local.account}:db:*", "${local.rds_arn}:${local.region}:${local.account}:cluster:*"]
  selection_conditions = [for key, value in var.selection_tags : {
    test     = value == "*" ? "StringLike" : "StringEquals"
    variable = "aws:ResourceTag/${key}"
    values   = [value]
  }]
  # A database carrying an exclude tag (any value for "*"): IAM's negated operators match when
  # the tag is absent (IAM User Guide, "Condition operators": ...IfExists and Null).
  exclusion_conditions = [for key, value in var.exclude_tags : value == "*" ? {
    test     = "Null"
    variable = "aws:ResourceTag/${key}"
    values   = ["true"]
    } : {
    test     = "StringNotEquals"
    variable = "aws:ResourceTag/${key}"
    values   = [value]
  }]
  automated_backup_actions = ["rds:ModifyDBInstance", "rds:ModifyDBCluster"]
  manages_named_only       = var.manage_automated_backups != null && !local.selects_by_criteria
  any_snapshot_arns        = { for region in local.snapshot_regions : region => ["${local.rds_arn}:${region}:${local.account}:*snapshot:*"] }
  # What the functions may read: the named databases' snapshots, and any when selecting.
  readable_snapshot_arns = { for region in local.snapshot_regions : region => concat(
    local.own_snapshot_arns[region], local.selects_by_criteria ? local.any_snapshot_arns[region] : [],
  ) }
  # The snapshot function's policy in characters without white space: its own statements
  # (known at plan) and a reserve for the statements every function has.
  snapshot_policy_characters = length(replace(data.aws_iam_policy_document.snapshot.json, "/\\s/", "")) + 1000
  # Listing snapshots (prune, notify) names no one snapshot: the account's RDS resources in a region.
  rds_in_regions       = [for region in local.snapshot_regions : "${local.rds_arn}:${region}:${local.account}:*"]
  rds_in_source_region = "${local.rds_arn}:${local.region}:${local.account}:*"
  # Who reads export tasks, where: the export and its wait in the source region; prune, which
  # never deletes a snapshot with an export running, in every region it prunes.
  export_task_regions = {
    export               = [local.region]
    "wait-for-available" = [local.region]
    prune                = local.snapshot_regions
  }

  copy_kms_key_arn = local.copy_region == null ? null : coalesce(
    var.cross_region_kms_key_arn,
    "arn:${local.partition}:kms:${local.copy_region}:${local.account}:alias/aws/rds",
  )
}

# Who may assume each role: one AWS service, on behalf of this account only.
data "aws_iam_policy_document" "trust" {
  for_each = {
    lambda         = "lambda.amazonaws.com"
    export         = "export.rds.amazonaws.com"
    states         = "states.amazonaws.com"
    schedule       = "events.amazonaws.com"
    poll_scheduler = "scheduler.amazonaws.com"
  }

  statement {
    actions = ["sts:AssumeRole"]
    principals {
      type        = "Service"
      identifiers = [each.value]
    }
    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account]
    }
    # The Scheduler, for the schedules of the module's group only ("The ARN you specify must be
    # a schedule group", EventBridge Scheduler User Guide, confused deputy prevention).
    dynamic "condition" {
      for_each = each.key == "poll_scheduler" ? [local.poll_schedule_group_arn] : []
      content {
        test     = "ArnEquals"
        variable = "aws:SourceArn"
        values   = [condition.value]
      }
    }
  }
}

resource "aws_iam_role" "function" {
  for_each = local.functions

  name                 = "${var.iam_role_name_prefix}${local.prefix}-${local.instance_hash}-${each.key}"
  path                 = var.iam_role_path
  permissions_boundary = var.iam_permissions_boundary_arn
  description          = "database-backup ${each.key} function of ${local.prefix}"
  assume_role_policy   = data.aws_iam_policy_document.trust["lambda"].json
  max_session_duration = 3600
  tags                 = local.tags
}

resource "aws_iam_role_policy" "function" {
  for_each = local.functions

  name   = "${each.key}-function"
  role   = aws_iam_role.function[each.key].id
  policy = data.aws_iam_policy_document.function[each.key].json

  lifecycle {
    # IAM refuses a role whose inline policies pass 10,240 characters, white space not counted
    # (IAM User Guide, "IAM and AWS STS quotas"). The snapshot function's grows fastest with the
    # databases, and its own statements are known at plan: with room for the statements every
    # function has (at most 1,000 characters measured: logs, X-Ray, KMS, the VPC's ENIs), the
    # plan refuses a list that cannot fit, before anything is created.
    precondition {
      condition     = each.key != "snapshot" || local.snapshot_policy_characters <= 10240
      error_message = "The snapshot function's IAM policy would be about ${local.snapshot_policy_characters} characters, and IAM allows a role 10,240: rds_instance_ids and rds_cluster_ids name ${length(local.database_ids)} databases, more than fit at their identifiers' length (each adds its ARNs). Select them by tag instead (selection_tags: the policies do not grow with the fleet), or back them up with more than one instance of the module, fewer databases each."
    }
    # Every function's whole policy, where the plan knows it, else before it is put.
    precondition {
      condition     = length(replace(data.aws_iam_policy_document.function[each.key].json, "/\\s/", "")) <= 10240
      error_message = "The ${each.key} function's IAM policy would be ${length(replace(data.aws_iam_policy_document.function[each.key].json, "/\\s/", ""))} characters, and IAM allows a role 10,240: rds_instance_ids and rds_cluster_ids name ${length(local.database_ids)} databases, more than fit. Select them by tag instead (selection_tags), or back them up with more than one instance of the module."
    }
  }
}

data "aws_iam_policy_document" "function" {
  for_each = local.functions

  # select calls AWS only to list the region's databases when selecting by tag or pattern.
  source_policy_documents = compact([
    data.aws_iam_policy_document.function_base[each.key].json,
    lookup({
      select               = local.selects_by_criteria ? data.aws_iam_policy_document.select.json : ""
      snapshot             = data.aws_iam_policy_document.snapshot.json
      "wait-for-available" = data.aws_iam_policy_document.wait_for_available.json
      export               = data.aws_iam_policy_document.export.json
      copy                 = data.aws_iam_policy_document.copy.json
      vault                = data.aws_iam_policy_document.vault.json
      prune                = data.aws_iam_policy_document.prune.json
      notify               = data.aws_iam_policy_document.notify.json
      drill                = local.drill_enabled ? data.aws_iam_policy_document.drill[0].json : ""
      probe                = local.sql_probe_enabled ? data.aws_iam_policy_document.probe[0].json : ""
    }, each.key, ""),
  ])
}

# What every function needs: its logs, X-Ray, its encrypted environment, and ENIs in a VPC.
data "aws_iam_policy_document" "function_base" {
  for_each = local.functions

  dynamic "statement" {
    for_each = var.enable_cloudwatch_logs ? [1] : []
    content {
      sid       = "WriteOwnLogs"
      actions   = ["logs:CreateLogStream", "logs:PutLogEvents"]
      resources = ["arn:${local.partition}:logs:${local.region}:${local.account}:log-group:/aws/lambda/${local.function_names[each.key]}:*"]
    }
  }

  dynamic "statement" {
    for_each = var.enable_xray_tracing ? [1] : []
    content {
      sid       = "XRayTraces"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
      resources = ["*"]
    }
  }

  statement {
    sid       = "DecryptOwnEnvironment"
    actions   = ["kms:Decrypt"]
    resources = [local.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:LambdaFunctionName"
      values   = [local.function_names[each.key]]
    }
  }

  # DescribeExportTasks names no resource: the Service Authorization Reference lists its
  # resource types (cluster, cluster-snapshot, snapshot) as optional, so IAM matches the
  # call against "*". Granted there, in the regions the function reads only.
  dynamic "statement" {
    for_each = contains(keys(local.export_task_regions), each.key) ? [1] : []
    content {
      sid       = "ReadExportTasks"
      actions   = ["rds:DescribeExportTasks"]
      resources = ["*"]
      condition {
        test     = "StringEquals"
        variable = "aws:RequestedRegion"
        values   = local.export_task_regions[each.key]
      }
    }
  }

  dynamic "statement" {
    for_each = local.in_vpc || each.key == "probe" ? [1] : []
    content {
      sid = "NetworkInterfacesInTheVpc"
      actions = [
        "ec2:CreateNetworkInterface", "ec2:DescribeNetworkInterfaces", "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses",
      ]
      # EC2 does not scope these to resources; the function's VpcConfig chooses the subnets.
      resources = ["*"]
    }
  }
}

# Listing the region's databases names no one database: IAM authorises it against db:* and
# cluster:*, and a tag condition there denies the listing rather than filtering it.
data "aws_iam_policy_document" "select" {
  statement {
    sid       = "ListTheRegionsDatabases"
    actions   = ["rds:DescribeDBInstances", "rds:DescribeDBClusters"]
    resources = local.selected_database_arns
  }
}

data "aws_iam_policy_document" "snapshot" {
  # Each ARN once (the role's policy size grows with the databases): an action granted on a
  # resource type it does not act on (CreateDBClusterSnapshot on an instance) allows nothing.
  # Any configured identifier may name an instance or an Aurora cluster; the snapshot is
  # created with its tags.
  dynamic "statement" {
    for_each = length(local.database_ids) > 0 ? [1] : []
    content {
      sid = "LookUpAndSnapshotTheConfiguredDatabases"
      actions = [
        "rds:DescribeDBInstances", "rds:DescribeDBClusters", "rds:CreateDBSnapshot", "rds:CreateDBClusterSnapshot",
        "rds:AddTagsToResource", "rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots",
      ]
      resources = local.database_arns
    }
  }

  dynamic "statement" {
    for_each = length(local.database_ids) > 0 ? [1] : []
    content {
      sid = "CreateTagAndFindOwnSnapshots"
      actions = [
        "rds:CreateDBSnapshot", "rds:CreateDBClusterSnapshot", "rds:AddTagsToResource", "rds:DescribeDBSnapshots",
        "rds:DescribeDBClusterSnapshots",
      ]
      resources = local.own_snapshot_arns[local.region]
    }
  }

  dynamic "statement" {
    for_each = local.selects_by_criteria ? [1] : []
    content {
      sid = "LookUpAndSnapshotTheSelectedDatabases"
      actions = [
        "rds:DescribeDBInstances", "rds:DescribeDBClusters", "rds:CreateDBSnapshot", "rds:CreateDBClusterSnapshot",
        "rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots",
      ]
      resources = local.selected_database_arns
      dynamic "condition" {
        for_each = local.selection_conditions
        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }

  # A snapshot of a selected database is created with this instance's managed-by tag
  # (tagging on create is authorised as AddTagsToResource too, with the request's tags).
  dynamic "statement" {
    for_each = local.selects_by_criteria ? [1] : []
    content {
      sid       = "CreateSnapshotsOfSelectedDatabasesWithOwnTag"
      actions   = ["rds:CreateDBSnapshot", "rds:CreateDBClusterSnapshot", "rds:AddTagsToResource"]
      resources = local.any_snapshot_arns[local.region]
      condition {
        test     = "StringEquals"
        variable = "aws:RequestTag/database-backup:managed-by"
        values   = [local.backup_instance]
      }
    }
  }

  dynamic "statement" {
    for_each = local.selects_by_criteria ? [1] : []
    content {
      sid       = "FindSnapshotsOfSelectedDatabases"
      actions   = ["rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots"]
      resources = local.any_snapshot_arns[local.region]
    }
  }

  statement {
    sid       = "ReadSnapshotQuota"
    actions   = ["rds:DescribeAccountAttributes"]
    resources = ["*"]
  }
}

# An export slot's hand-on (functions/core/src/slot_queue.rs), by the poll that sees an export
# end and by an export's first try that finds a slot free: it counts the messages of the queue of
# exports waiting for a slot (sqs.tf), takes them, deletes the longest waiter's and wakes it, and
# puts the others back (ChangeMessageVisibilityBatch is authorized as sqs:ChangeMessageVisibility). The
# wake names its task by the token alone, as the waits' calls below: "*".
data "aws_iam_policy_document" "hand_on_export_slots" {
  statement {
    sid       = "HandOnExportSlots"
    actions   = ["sqs:GetQueueAttributes", "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:ChangeMessageVisibility"]
    resources = [aws_sqs_queue.export_slot_waiters.arn]
  }

  statement {
    sid       = "WakeExportSlotWaiters"
    actions   = ["states:SendTaskSuccess"]
    resources = ["*"]
  }
}

data "aws_iam_policy_document" "wait_for_available" {
  source_policy_documents = [data.aws_iam_policy_document.hand_on_export_slots.json]

  statement {
    sid       = "ReadOwnSnapshots"
    actions   = ["rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots"]
    resources = flatten(values(local.readable_snapshot_arns))
  }

  # A wait is one task (statemachine/wait.asl.json) that the polls beat and end. These calls
  # name their task by the token alone; the only resource IAM can scope them to is an
  # activity, which a service integration's task is not: "*".
  statement {
    sid       = "EndWaits"
    actions   = ["states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"]
    resources = ["*"]
  }

  # Each poll schedules the next (scheduler.tf), in the module's group only, run by its role.
  statement {
    sid       = "ScheduleNextPoll"
    actions   = ["scheduler:CreateSchedule"]
    resources = ["arn:${local.partition}:scheduler:${local.region}:${local.account}:schedule/${aws_scheduler_schedule_group.polls.name}/*"]
  }

  statement {
    sid       = "PassPollSchedulerRole"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.poll_scheduler.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["scheduler.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "export" {
  source_policy_documents = [data.aws_iam_policy_document.hand_on_export_slots.json]

  dynamic "statement" {
    for_each = length(local.database_ids) > 0 ? [1] : []
    content {
      sid       = "ExportOwnSnapshots"
      actions   = ["rds:StartExportTask"]
      resources = local.own_snapshot_arns[local.region]
    }
  }

  dynamic "statement" {
    for_each = local.selects_by_criteria ? [1] : []
    content {
      sid       = "ExportSnapshotsOfSelectedDatabasesCarryingOwnTag"
      actions   = ["rds:StartExportTask"]
      resources = local.any_snapshot_arns[local.region]
      condition {
        test     = "StringEquals"
        variable = "aws:ResourceTag/database-backup:managed-by"
        values   = [local.backup_instance]
      }
    }
  }

  # s3_export_tiers: whether an earlier snapshot of the database in the period was exported
  # (its snapshots listed, read only, in this region).
  statement {
    sid       = "ListTheDatabasesSnapshots"
    actions   = ["rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots"]
    resources = [local.rds_in_source_region]
  }

  statement {
    sid       = "PassTheExportRole"
    actions   = ["iam:PassRole"]
    resources = [aws_iam_role.export.arn]
    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["export.rds.amazonaws.com"]
    }
  }

  # The buckets' guard (s3.tf): a destroy stops while a bucket holds exports.
  statement {
    sid       = "SeeWhetherTheBucketsHoldBackups"
    actions   = ["s3:ListBucketVersions"]
    resources = concat([aws_s3_bucket.backup.arn], aws_s3_bucket.access_logs[*].arn)
  }

  statement {
    sid       = "LetRdsUseTheExportKey"
    actions   = ["kms:DescribeKey", "kms:CreateGrant"]
    resources = [local.kms_key_arn]
    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["rds.${local.region}.amazonaws.com"]
    }
  }
}

data "aws_iam_policy_document" "copy" {
  dynamic "statement" {
    for_each = local.copy_region != null && length(local.database_ids) > 0 ? [1] : []
    content {
      sid       = "CopyOwnSnapshotsToTheDestination"
      actions   = ["rds:CopyDBSnapshot", "rds:CopyDBClusterSnapshot", "rds:AddTagsToResource", "rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots"]
      resources = concat(local.own_snapshot_arns[local.region], local.own_snapshot_arns[local.copy_region])
    }
  }

  # Selected databases' snapshots: copied only when they carry this instance's managed-by
  # tag, into copies created with it.
  dynamic "statement" {
    for_each = local.copy_region != null && local.selects_by_criteria ? [1] : []
    content {
      sid       = "CopySnapshotsOfSelectedDatabasesCarryingOwnTag"
      actions   = ["rds:CopyDBSnapshot", "rds:CopyDBClusterSnapshot"]
      resources = local.any_snapshot_arns[local.region]
      condition {
        test     = "StringEquals"
        variable = "aws:ResourceTag/database-backup:managed-by"
        values   = [local.backup_instance]
      }
    }
  }

  dynamic "statement" {
    for_each = local.copy_region != null && local.selects_by_criteria ? [1] : []
    content {
      sid       = "CreateCopiesOfSelectedDatabasesWithOwnTag"
      actions   = ["rds:CopyDBSnapshot", "rds:CopyDBClusterSnapshot", "rds:AddTagsToResource"]
      resources = local.any_snapshot_arns[local.copy_region]
      condition {
        test     = "StringEquals"
        variable = "aws:RequestTag/database-backup:managed-by"
        values   = [local.backup_instance]
      }
    }
  }

  dynamic "statement" {
    for_each = local.copy_region != null && local.selects_by_criteria ? [1] : []
    content {
      sid       = "FindCopiesOfSelectedDatabases"
      actions   = ["rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots"]
      resources = concat(local.any_snapshot_arns[local.region], local.any_snapshot_arns[local.copy_region])
    }
  }

  statement {
    sid       = "ReadSnapshotQuota"
    actions   = ["rds:DescribeAccountAttributes"]
    resources = ["*"]
  }

  # Oracle and SQL Server snapshots with TDE need an option group in the destination:
  # copy reads which options the source snapshot's option group must keep.
  dynamic "statement" {
    for_each = local.copy_region == null ? [] : [1]
    content {
      sid       = "ReadSourceOptionGroups"
      actions   = ["rds:DescribeOptionGroups"]
      resources = ["${local.rds_arn}:${local.region}:${local.account}:og:*"]
    }
  }

  dynamic "statement" {
    for_each = local.copy_region == null ? [] : [1]
    content {
      sid     = "LetRdsReEncryptCopies"
      actions = ["kms:DescribeKey", "kms:CreateGrant"]
      resources = [
        "arn:${local.partition}:kms:${local.region}:${local.account}:key/*",
        "arn:${local.partition}:kms:${local.copy_region}:${local.account}:key/*",
      ]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["rds.${local.region}.amazonaws.com", "rds.${local.copy_region}.amazonaws.com"]
      }
    }
  }
}

data "aws_iam_policy_document" "prune" {
  statement {
    sid       = "ListSnapshots"
    actions   = ["rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots"]
    resources = local.rds_in_regions
  }

  # What the exports hold by storage class, for the run summary's retained storage and cost
  # (ListObjectsV2 is authorized as s3:ListBucket).
  statement {
    sid       = "ListTheExports"
    actions   = ["s3:ListBucket"]
    resources = [aws_s3_bucket.backup.arn]
  }

  # Only snapshots that carry this module instance's managed-by tag, or one it adopted, can be deleted.
  statement {
    sid       = "DeleteOwnInstanceSnapshots"
    actions   = ["rds:DeleteDBSnapshot"]
    resources = [for region in local.snapshot_regions : "${local.rds_arn}:${region}:${local.account}:snapshot:*"]
    condition {
      test     = "StringEquals"
      variable = "rds:snapshot-tag/database-backup:managed-by"
      values   = local.owned_managed_by
    }
  }

  statement {
    sid       = "DeleteOwnClusterSnapshots"
    actions   = ["rds:DeleteDBClusterSnapshot"]
    resources = [for region in local.snapshot_regions : "${local.rds_arn}:${region}:${local.account}:cluster-snapshot:*"]
    condition {
      test     = "StringEquals"
      variable = "rds:cluster-snapshot-tag/database-backup:managed-by"
      values   = local.owned_managed_by
    }
  }

  # Under a retention_policy each kept snapshot is tagged with the tiers that keep it: only
  # snapshots this instance owns, and only that one key (Service Authorization Reference,
  # Amazon RDS: AddTagsToResource takes aws:ResourceTag/${TagKey} and aws:TagKeys).
  statement {
    sid     = "TagOwnSnapshotsWithTheirTiers"
    actions = ["rds:AddTagsToResource"]
    resources = flatten([for region in local.snapshot_regions : [
      "${local.rds_arn}:${region}:${local.account}:snapshot:*",
      "${local.rds_arn}:${region}:${local.account}:cluster-snapshot:*",
    ]])
    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/database-backup:managed-by"
      values   = local.owned_managed_by
    }
    condition {
      test     = "ForAllValues:StringEquals"
      variable = "aws:TagKeys"
      values   = ["database-backup:retention-tiers"]
    }
  }
}

data "aws_iam_policy_document" "notify" {
  statement {
    sid       = "PublishTheRunSummary"
    actions   = ["sns:Publish"]
    resources = [local.sns_topic_arn]
  }

  statement {
    sid       = "PutBackupMetrics"
    actions   = ["cloudwatch:PutMetricData"]
    resources = ["*"]
    condition {
      test     = "StringEquals"
      variable = "cloudwatch:namespace"
      values   = [var.metrics_namespace]
    }
  }

  statement {
    sid       = "ReadSnapshotAges"
    actions   = ["rds:DescribeDBSnapshots", "rds:DescribeDBClusterSnapshots"]
    resources = [local.rds_in_source_region]
  }

  # The hourly watch on point-in-time recovery reads each database (by identifier, as an
  # instance, then as a cluster): the configured ones, and when selecting, the region's.
  dynamic "statement" {
    for_each = length(local.database_ids) > 0 || local.selects_by_criteria ? [1] : []
    content {
      # With manage_automated_backups and no selection, the same ARNs may be modified: each
      # ARN once (the role's inline policies share 10,240 characters).
      sid = local.manages_named_only ? "WatchAndManagePointInTimeRecovery" : "WatchPointInTimeRecovery"
      actions = concat(["rds:DescribeDBInstances", "rds:DescribeDBClusters"],
      local.manages_named_only ? local.automated_backup_actions : [])
      resources = local.selects_by_criteria ? local.selected_database_arns : local.database_arns
    }
  }

  # manage_automated_backups: the retention and backup window of the run's databases (the
  # function sends only those two): the named ones, and the selected ones that carry
  # selection_tags and none of exclude_tags (patterns alone are refused at plan).
  dynamic "statement" {
    for_each = var.manage_automated_backups != null && local.selects_by_criteria && length(local.database_ids) > 0 ? [1] : []
    content {
      sid       = "ManageAutomatedBackupsOfTheConfiguredDatabases"
      actions   = local.automated_backup_actions
      resources = local.database_arns
    }
  }

  dynamic "statement" {
    for_each = var.manage_automated_backups != null && local.selects_by_criteria ? [1] : []
    content {
      sid       = "ManageAutomatedBackupsOfTheSelectedDatabases"
      actions   = local.automated_backup_actions
      resources = local.selected_database_arns
      dynamic "condition" {
        for_each = concat(local.selection_conditions, local.exclusion_conditions)
        content {
          test     = condition.value.test
          variable = condition.value.variable
          values   = condition.value.values
        }
      }
    }
  }

  # Each database's result is the output of its execution of the database state machine.
  statement {
    sid       = "ReadDatabaseResults"
    actions   = ["states:DescribeExecution"]
    resources = [local.database_executions_arn]
  }

  # A run that ended outside its own error handling: its status, and the end of its history.
  statement {
    sid       = "ReadRunsThatEndedBadly"
    actions   = ["states:DescribeExecution", "states:GetExecutionHistory"]
    resources = [local.backup_executions_arn]
  }

  # The webhook's secret, and the key it is encrypted under, only through Secrets Manager.
  dynamic "statement" {
    for_each = var.slack_webhook_url == null ? [] : [1]
    content {
      sid       = "ReadTheSlackWebhook"
      actions   = ["secretsmanager:GetSecretValue"]
      resources = [local.slack_webhook_secret_arn]
    }
  }

  dynamic "statement" {
    for_each = var.slack_webhook_url == null ? [] : [1]
    content {
      sid       = "DecryptTheSlackWebhook"
      actions   = ["kms:Decrypt"]
      resources = [local.kms_key_arn]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["secretsmanager.${local.region}.amazonaws.com"]
      }
    }
  }

  # The topic's key, through SNS in the topic's region only: the module's own topic is
  # encrypted with the module's key; a topic you bring with sns_topic_kms_key_arn, if any.
  dynamic "statement" {
    for_each = local.create_sns_topic || var.sns_topic_kms_key_arn != null ? [1] : []
    content {
      sid       = local.create_sns_topic ? "PublishToTheEncryptedTopic" : "PublishToYourEncryptedTopic"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey*"]
      resources = [local.create_sns_topic ? local.kms_key_arn : var.sns_topic_kms_key_arn]
      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["sns.${split(":", local.sns_topic_arn)[3]}.amazonaws.com"]
      }
    }
  }
}

# The role RDS assumes to write exports into the bucket.

resource "aws_iam_role" "export" {
  name                 = "${var.iam_role_name_prefix}${local.prefix}-${local.instance_hash}-rds-export"
  path                 = var.iam_role_path
  permissions_boundary = var.iam_permissions_boundary_arn
  description          = "RDS writes ${local.prefix} snapshot exports to the backup bucket"
  assume_role_policy   = data.aws_iam_policy_document.trust["export"].json
  tags                 = local.tags
}

resource "aws_iam_role_policy" "export" {
  name   = "write-exports"
  role   = aws_iam_role.export.id
  policy = data.aws_iam_policy_document.export_role.json
}

data "aws_iam_policy_document" "export_role" {
  statement {
    sid       = "WriteExportsToTheBucket"
    actions   = ["s3:PutObject*", "s3:GetObject*", "s3:DeleteObject*"]
    resources = ["${aws_s3_bucket.backup.arn}/${var.project_name}/${var.environment}/*"]
  }

  statement {
    sid       = "ListTheBucket"
    actions   = ["s3:ListBucket", "s3:GetBucketLocation"]
    resources = [aws_s3_bucket.backup.arn]
  }

  statement {
    sid       = "EncryptExports"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:DescribeKey", "kms:CreateGrant"]
    resources = [local.kms_key_arn]
  }
}

# Step Functions, for both state machines (the run and the one database each of
# its Map items starts): invoke the eight functions, start and follow the database
# executions, deliver logs, send traces.

resource "aws_iam_role" "state_machine" {
  name                 = "${var.iam_role_name_prefix}${local.prefix}-${local.instance_hash}-state-machine"
  path                 = var.iam_role_path
  permissions_boundary = var.iam_permissions_boundary_arn
  description          = "The ${local.prefix} backup state machine"
  assume_role_policy   = data.aws_iam_policy_document.trust["states"].json
  tags                 = local.tags
}

resource "aws_iam_role_policy" "state_machine" {
  name   = "run-backup"
  role   = aws_iam_role.state_machine.id
  policy = data.aws_iam_policy_document.state_machine.json
}

data "aws_iam_policy_document" "state_machine" {
  statement {
    sid       = "InvokeTheBackupFunctions"
    actions   = ["lambda:InvokeFunction"]
    resources = concat(values(local.function_arns), [for arn in values(local.function_arns) : "${arn}:*"])
  }

  statement {
    sid       = "StartDatabaseExecutions"
    actions   = ["states:StartExecution"]
    resources = [local.database_state_machine_arn]
  }

  # startExecution.sync: follow each database execution to its end, stop it when the run is stopped.
  statement {
    sid       = "FollowDatabaseExecutions"
    actions   = ["states:DescribeExecution", "states:StopExecution"]
    resources = [local.database_executions_arn]
  }

  # The queue of exports waiting for a slot (sqs.tf): wait in it (wait-for-available hands slots on).
  statement {
    sid       = "QueueForExportSlots"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.export_slot_waiters.arn]
  }

  # The rule Step Functions itself manages to learn that a .sync execution ended.
  statement {
    sid       = "ManagedRuleForDatabaseExecutions"
    actions   = ["events:PutTargets", "events:PutRule", "events:DescribeRule"]
    resources = ["arn:${local.partition}:events:${local.region}:${local.account}:rule/StepFunctionsGetEventsForStepFunctionsExecutionRule"]
  }

  # Log delivery and X-Ray take no resource scoping (AWS documents "*").
  statement {
    sid = "DeliverExecutionLogs"
    actions = [
      "logs:CreateLogDelivery", "logs:GetLogDelivery", "logs:UpdateLogDelivery", "logs:DeleteLogDelivery",
      "logs:ListLogDeliveries", "logs:PutResourcePolicy", "logs:DescribeResourcePolicies", "logs:DescribeLogGroups",
    ]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = var.enable_xray_tracing ? [1] : []
    content {
      sid       = "XRayTraces"
      actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords", "xray:GetSamplingRules", "xray:GetSamplingTargets"]
      resources = ["*"]
    }
  }
}

# EventBridge: start the backup on the schedule.

resource "aws_iam_role" "schedule" {
  name                 = "${var.iam_role_name_prefix}${local.prefix}-${local.instance_hash}-backup-schedule"
  path                 = var.iam_role_path
  permissions_boundary = var.iam_permissions_boundary_arn
  description          = "EventBridge starts the ${local.prefix} backup on its schedule"
  assume_role_policy   = data.aws_iam_policy_document.trust["schedule"].json
  tags                 = local.tags
}

resource "aws_iam_role_policy" "schedule" {
  name   = "start-backup"
  role   = aws_iam_role.schedule.id
  policy = data.aws_iam_policy_document.schedule.json
}

data "aws_iam_policy_document" "schedule" {
  statement {
    sid       = "StartTheBackup"
    actions   = ["states:StartExecution"]
    resources = [aws_sfn_state_machine.workflow["backup"].arn]
  }

  # The drills and their hourly sweep (restore_drill).
  dynamic "statement" {
    for_each = local.drill_enabled ? [1] : []
    content {
      sid       = "StartTheDrills"
      actions   = ["states:StartExecution"]
      resources = [aws_sfn_state_machine.workflow["drill"].arn]
    }
  }
}
