#!/usr/bin/perl
# perl prepared.pl HOST PORT DB USER PASSWORD TABLE WORKERS ROUNDS
# DBD::Pg with its default server-side prepares (pg_server_prepare=1: a named statement per
# prepared handle), one forked process per worker. Each round: a parametrised query, a
# transaction that inserts and counts (every third rolled back), a handle prepared once and
# reused across transactions; every value checked. Prints "ok N" with the rounds done.
use strict;
use warnings;
use DBI;

my ($host, $port, $db, $user, $pw, $table, $workers, $rounds) = @ARGV;

sub work {
    my ($w) = @_;
    my $dbh = DBI->connect("dbi:Pg:dbname=$db;host=$host;port=$port;sslmode=disable", $user, $pw,
                           { RaiseError => 1, AutoCommit => 1, PrintError => 0 });
    my $calc = $dbh->prepare("select ?::int * 1000 + ?::int");
    my $ins = $dbh->prepare("insert into $table values (?, ?)");
    my $cnt = $dbh->prepare("select count(*) from $table where w = ?");
    my $reused = $dbh->prepare("select ?::int + $w");
    my $committed = 0;
    for my $i (1 .. $rounds) {
        $calc->execute($w, $i);
        my ($v) = $calc->fetchrow_array;
        die "calc $v" unless $v == $w * 1000 + $i;
        $dbh->begin_work;
        $ins->execute($w, $i);
        $cnt->execute($w);
        my ($n) = $cnt->fetchrow_array;
        die "count $n want " . ($committed + 1) unless $n == $committed + 1;
        $reused->execute($i);
        my ($u) = $reused->fetchrow_array;
        die "reused $u" unless $u == $i + $w;
        if ($i % 3 == 0) {
            $dbh->rollback;
        } else {
            $dbh->commit;
            $committed++;
        }
        $cnt->execute($w);
        ($n) = $cnt->fetchrow_array;
        die "count after $n want $committed" unless $n == $committed;
    }
    $dbh->disconnect;
}

my @pids;
for my $w (1 .. $workers) {
    my $pid = fork();
    die "fork: $!" unless defined $pid;
    if ($pid == 0) {
        alarm 120;
        eval { work($w); 1 } or do { print STDERR "worker $w: $@"; exit 1 };
        exit 0;
    }
    push @pids, $pid;
}
my $failed = 0;
for my $pid (@pids) {
    waitpid($pid, 0);
    $failed++ if $? != 0;
}
die "$failed workers failed\n" if $failed;
print "ok " . ($workers * $rounds) . "\n";
