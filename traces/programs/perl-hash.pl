# Hash churn: a sliding window of 500 string values in a hash, then a sort of its keys.
my %h;
for my $i (1 .. 60000) {
  $h{"key$i"} = "v" x ($i % 200);
  delete $h{"key" . ($i - 500)} if $i > 500;
}
my @k = sort keys %h;
print scalar(@k), "\n";
