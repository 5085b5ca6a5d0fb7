// A small HTTP service for the real-program suite (java case): the JDK's
// HttpServer with a fixed pool of 4 threads.
//   /who        -> state=S hits=N
//   /set?VALUE  -> sets state
import com.sun.net.httpserver.HttpServer;
import java.io.OutputStream;
import java.net.InetSocketAddress;
import java.util.concurrent.Executors;
import java.util.concurrent.atomic.AtomicLong;

public class HttpPool {
    static volatile String state = "";
    static final AtomicLong hits = new AtomicLong();

    public static void main(String[] args) throws Exception {
        HttpServer s = HttpServer.create(new InetSocketAddress("127.0.0.1", Integer.parseInt(args[0])), 64);
        s.setExecutor(Executors.newFixedThreadPool(4));
        s.createContext("/", ex -> {
            String q = ex.getRequestURI().getQuery();
            if (q != null)
                state = q;
            byte[] b = ("state=" + state + " hits=" + hits.incrementAndGet() + "\n").getBytes();
            ex.sendResponseHeaders(200, b.length);
            try (OutputStream o = ex.getResponseBody()) {
                o.write(b);
            }
        });
        s.start();
    }
}
