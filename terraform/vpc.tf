# Optional: the functions in the caller's VPC, and endpoints so they reach AWS without internet.
# Calls to the copy region (enable_cross_region_copy) and to Slack still need a NAT route.

locals {
  # Decided by the subnet list's length, which is known at plan time even when the
  # subnets are created in the same apply (vpc_id may not be).
  in_vpc              = length(var.subnet_ids) > 0
  interface_endpoints = var.enable_vpc_endpoints ? toset(["rds", "sns", "monitoring", "logs", "states", "kms", "sts"]) : toset([])
}

resource "aws_security_group" "lambda" {
  count = local.in_vpc ? 1 : 0

  name        = "${local.prefix}-backup-functions"
  description = "database-backup functions of ${local.prefix}: HTTPS out only"
  vpc_id      = var.vpc_id
  tags        = local.tags

  egress {
    description = "HTTPS to AWS APIs and the Slack webhook"
    from_port   = 443
    to_port     = 443
    protocol    = "tcp"
    cidr_blocks = ["0.0.0.0/0"]
  }
}

resource "aws_security_group" "endpoints" {
  count = var.enable_vpc_endpoints ? 1 : 0

  name        = "${local.prefix}-backup-endpoints"
  description = "Interface endpoints used by the ${local.prefix} backup functions"
  vpc_id      = var.vpc_id
  tags        = local.tags

  ingress {
    description     = "HTTPS from the backup functions"
    from_port       = 443
    to_port         = 443
    protocol        = "tcp"
    security_groups = [aws_security_group.lambda[0].id]
  }
}

resource "aws_vpc_endpoint" "interface" {
  for_each = local.interface_endpoints

  vpc_id              = var.vpc_id
  service_name        = "com.amazonaws.${local.region}.${each.key}"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = var.subnet_ids
  security_group_ids  = [aws_security_group.endpoints[0].id]
  private_dns_enabled = true
  tags                = merge(local.tags, { Name = "${local.prefix}-backup-${each.key}" })
}

data "aws_route_tables" "vpc" {
  count  = var.enable_vpc_endpoints ? 1 : 0
  vpc_id = var.vpc_id
}

resource "aws_vpc_endpoint" "s3" {
  count = var.enable_vpc_endpoints ? 1 : 0

  vpc_id            = var.vpc_id
  service_name      = "com.amazonaws.${local.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = data.aws_route_tables.vpc[0].ids
  tags              = merge(local.tags, { Name = "${local.prefix}-backup-s3" })
}
