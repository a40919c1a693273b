# Stands in for an organisation's shared network: a VPC with two private subnets.

variable "name" {
  description = "Name tag prefix."
  type        = string
}

variable "cidr_block" {
  description = "VPC CIDR; the private subnets take its first two /24s."
  type        = string
}

data "aws_availability_zones" "available" {
  # checkov:skip=CKV_AWS_394: the stand-in spreads its two subnets over the region's available zones, whichever they are
  state = "available"
}

resource "aws_vpc" "this" {
  # checkov:skip=CKV2_AWS_11: flow logs belong to the organisation's real network, not this stand-in
  # checkov:skip=CKV2_AWS_12: the default security group of this stand-in VPC is unused
  cidr_block           = var.cidr_block
  enable_dns_support   = true
  enable_dns_hostnames = true
  tags                 = { Name = var.name }
}

resource "aws_subnet" "private" {
  count = 2

  vpc_id            = aws_vpc.this.id
  cidr_block        = cidrsubnet(var.cidr_block, 8, count.index)
  availability_zone = data.aws_availability_zones.available.names[count.index]
  tags              = { Name = "${var.name}-private-${count.index}" }
}

resource "aws_route_table" "private" {
  vpc_id = aws_vpc.this.id
  tags   = { Name = "${var.name}-private" }
}

resource "aws_route_table_association" "private" {
  count = 2

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private.id
}

output "vpc_id" {
  description = "VPC id"
  value       = aws_vpc.this.id
}

output "private_subnet_ids" {
  description = "Private subnet ids"
  value       = aws_subnet.private[*].id
}
