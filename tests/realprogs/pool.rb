# A small TCP service for the real-program suite (ruby case).
#
# Threads: the main thread accepts on 127.0.0.1:PORT and hands each
# connection through a Queue to a pool of 4 threads that answer one line:
#   who        -> pid=P threads=T pool=ALIVE
#   set K V    -> ok
#   get K      -> value=V        (value= if absent)
#   work N     -> pid=P sum=S    (the sum of i*i % 7919 for i < N)
#   signals    -> pid=P usr1=N   (SIGUSR1 trapped so far)
#   cancel     -> pid=P cancelled=true  (a thread blocked reading a pipe is
#                 killed by the pool thread: Ruby interrupts it through its
#                 timer, as Timeout and Thread#raise do)
require "socket"

POOL = 4
store = {}
usr1 = 0
Signal.trap("USR1") { usr1 += 1 }
jobs = Queue.new

answer = lambda do |line|
  w = line.split
  case w[0]
  when "who" then "pid=#{Process.pid} threads=#{Thread.list.size} pool=#{$pool.count(&:alive?)}"
  when "set" then store[w[1]] = w[2]; "ok"
  when "get" then "value=#{store[w[1]]}"
  when "work" then "pid=#{Process.pid} sum=#{(0...Integer(w[1])).sum { |i| i * i % 7919 }}"
  when "signals" then "pid=#{Process.pid} usr1=#{usr1}"
  when "cancel"
    rd, wr = IO.pipe
    t = Thread.new { rd.read }
    Thread.pass until t.status == "sleep"
    t.kill.join(10)
    rd.close
    wr.close
    "pid=#{Process.pid} cancelled=#{!t.alive?}"
  else "error"
  end
end

$pool = Array.new(POOL) do
  Thread.new do
    loop do
      conn = jobs.pop
      begin
        conn.write(answer.call(conn.gets.to_s) + "\n")
      rescue StandardError => e
        warn "pool.rb: #{e.class}: #{e.message}"
      ensure
        conn.close
      end
    end
  end
end

server = TCPServer.new("127.0.0.1", Integer(ARGV[0]))
loop { jobs << server.accept }
