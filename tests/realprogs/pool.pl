# A small TCP service for the real-program suite (perl case).
# The main thread answers one line per connection on 127.0.0.1:PORT; a pool of
# 4 ithreads computes work through Thread::Queue:
#   who      -> pid=P        set K V -> ok        get K -> value=V
#   work N   -> pid=P sum=S  (each of 4 jobs sums i*i % 7919 for i < N)
#   signals  -> pid=P usr1=N
use strict;
use warnings;
use threads;
use Thread::Queue;
use IO::Socket::INET;

my $jobs = Thread::Queue->new;
my $done = Thread::Queue->new;
my %store;
my $usr1 = 0;
my @pool = map {
	threads->create(sub {
		while (defined(my $n = $jobs->dequeue)) {
			my $s = 0;
			$s += $_ * $_ % 7919 for 0 .. $n - 1;
			$done->enqueue($s);
		}
	});
} 1 .. 4;
$SIG{USR1} = sub { $usr1++ };
my $srv = IO::Socket::INET->new(LocalAddr => "127.0.0.1", LocalPort => $ARGV[0], Listen => 64,
                                ReuseAddr => 1) or die "listen: $!";
while (1) {
	my $c = $srv->accept or next;   # EINTR from a signal: accept again
	my @w = split ' ', (<$c> // "");
	my $cmd = $w[0] // "";
	my $out = "error";
	if ($cmd eq "who") { $out = "pid=$$" }
	elsif ($cmd eq "set") { $store{$w[1]} = $w[2]; $out = "ok" }
	elsif ($cmd eq "get") { $out = "value=" . ($store{$w[1]} // "") }
	elsif ($cmd eq "signals") { $out = "pid=$$ usr1=$usr1" }
	elsif ($cmd eq "work") {
		$jobs->enqueue($w[1]) for 1 .. 4;
		my $t = 0;
		$t += $done->dequeue for 1 .. 4;
		$out = "pid=$$ sum=$t";
	}
	print $c "$out\n";
	close $c;
}
