#!/usr/bin/perl
# Every kernel defined in the given cl/*.cl files, one "file kernel" line each: plain
# "__kernel ... void NAME(" definitions, and the kernels a macro that holds a __kernel
# definition stamps out ("POOL_MAX_ROWS(pool2d_max_fwd_rows_s1, 1)"). Local
# #include "x.h" lines are expanded from the file's directory first (as the library does),
# so kernels in an included header count under the program that includes them.
use strict;
use warnings;
local $/;

sub slurp {
    my ($path, $depth) = @_;
    die "$path: includes nest too deep\n" if $depth > 4;
    open(my $fh, '<', $path) or die "$path: $!";
    my $text = <$fh>;
    close $fh;
    (my $dir = $path) =~ s#[^/]*$##;
    $text =~ s/^[ \t]*#[ \t]*include[ \t]*"([^"\n]+)"[^\n]*$/slurp("$dir$1", $depth + 1)/mge;
    return $text;
}

for my $path (@ARGV) {
    my $text = slurp($path, 0);
    (my $file = $path) =~ s#.*/##;
    $file =~ s/\.cl$//;
    my %macro;
    # a #define with its backslash-continued lines
    while ($text =~ /^[ \t]*#[ \t]*define[ \t]+(\w+)\(((?:[^\n]*\\\n)*[^\n]*)/mg) {
        my ($name, $body) = ($1, $2);
        $macro{$name} = 1 if $body =~ /__kernel\b/;
    }
    (my $plain = $text) =~ s/^[ \t]*#[ \t]*define(?:[^\n]*\\\n)*[^\n]*//mg;
    while ($plain =~ /__kernel\b.*?\bvoid\s+(\w+)\s*\(/sg) {
        print "$file $1\n";
    }
    for my $m (sort keys %macro) {
        while ($plain =~ /^[ \t]*\Q$m\E\(\s*(\w+)/mg) {
            print "$file $1\n";
        }
    }
}
