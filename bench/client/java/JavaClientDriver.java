import java.io.BufferedReader;
import java.io.FileDescriptor;
import java.io.FileOutputStream;
import java.io.InputStreamReader;
import java.io.OutputStream;
import java.lang.management.GarbageCollectorMXBean;
import java.lang.management.ManagementFactory;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Paths;
import java.util.Arrays;
import java.util.List;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicInteger;
import java.util.stream.Collectors;

import org.apache.zookeeper.AsyncCallback;
import org.apache.zookeeper.CreateMode;
import org.apache.zookeeper.Version;
import org.apache.zookeeper.WatchedEvent;
import org.apache.zookeeper.Watcher;
import org.apache.zookeeper.ZooDefs;
import org.apache.zookeeper.ZooKeeper;
import org.apache.zookeeper.client.ZKClientConfig;
import org.apache.zookeeper.data.ACL;
import org.apache.zookeeper.data.Stat;

/**
 * ZooKeeper's own Java client as a peer in bench/client/run.ts. The Node runner owns the
 * schedule (slices, orders, rounds); this process only runs the slice it is told to, so the Java
 * client's slices sit in the same rounds as the Node clients'. One command per line on stdin, one
 * reply per line on stdout ("ok ..." or "error <reason>"):
 *
 *   connect HOST:PORT SESSION_MS        -> ok
 *   run OP BASE FROM TO CONCURRENCY BYTES
 *       OP = create | getData | setData | delete on BASE/n{FROM..TO-1}, CONCURRENCY requests
 *       outstanding (each completion's callback sends the next request, as each of the Node
 *       runner's workers awaits its request and sends the next)
 *                                       -> ok WALL_NS CPU_TICKS T0_NS then, per request in
 *                                          index order, LATENCY_NS START_NS (start relative to T0)
 *   close                               -> ok
 *
 * On start it prints "ready\tZOOKEEPER_VERSION\tJAVA_RUNTIME\tGCS"; end of stdin ends it, so it
 * cannot outlive the runner. CPU_TICKS is this whole JVM process's utime + stime from
 * /proc/self/stat (every thread: the client's send and event threads, the JIT compilers, the
 * garbage collector) read just before the first request and just after the last completion, so
 * the command's parsing and the reply's formatting are not charged to the client, as the Node
 * runner's own bookkeeping outside a slice is not charged to the Node clients.
 */
public final class JavaClientDriver {
    private static final List<ACL> OPEN = ZooDefs.Ids.OPEN_ACL_UNSAFE;

    private ZooKeeper zk;

    public static void main(String[] args) throws Exception {
        BufferedReader in = new BufferedReader(new InputStreamReader(System.in, StandardCharsets.UTF_8));
        OutputStream out = new FileOutputStream(FileDescriptor.out);
        JavaClientDriver driver = new JavaClientDriver();
        String gcs = ManagementFactory.getGarbageCollectorMXBeans().stream()
                .map(GarbageCollectorMXBean::getName).collect(Collectors.joining(", "));
        reply(out, "ready\t" + Version.getVersion() + "\t" + System.getProperty("java.vm.name") + " "
                + System.getProperty("java.runtime.version") + "\t" + gcs);
        for (String line; (line = in.readLine()) != null;) {
            String answer;
            try {
                answer = driver.handle(line.trim().split(" "));
            } catch (Exception e) {
                answer = "error " + e;
            }
            reply(out, answer.replace('\n', ' '));
        }
        driver.close();
    }

    private static void reply(OutputStream out, String line) throws Exception {
        out.write((line + "\n").getBytes(StandardCharsets.UTF_8));
        out.flush();
    }

    private String handle(String[] cmd) throws Exception {
        switch (cmd[0]) {
            case "connect":
                return connect(cmd[1], Integer.parseInt(cmd[2]));
            case "run":
                if (zk == null) return "error run before connect";
                return new Slice(zk, cmd[1], cmd[2], Integer.parseInt(cmd[3]), Integer.parseInt(cmd[4]),
                        Integer.parseInt(cmd[5]), Integer.parseInt(cmd[6])).run();
            case "close":
                close();
                return "ok";
            default:
                return "error unknown command " + String.join(" ", cmd);
        }
    }

    private String connect(String connectString, int sessionMs) throws Exception {
        CountDownLatch connected = new CountDownLatch(1);
        ZKClientConfig config = new ZKClientConfig();
        // The Node clients do not authenticate either; without this the client looks for a JAAS
        // configuration on every connect.
        config.setProperty(ZKClientConfig.ENABLE_CLIENT_SASL_KEY, "false");
        Watcher watcher = (WatchedEvent e) -> {
            if (e.getState() == Watcher.Event.KeeperState.SyncConnected) connected.countDown();
        };
        zk = new ZooKeeper(connectString, sessionMs, watcher, config);
        if (!connected.await(20, TimeUnit.SECONDS)) return "error no connection to " + connectString + " in 20 s";
        return "ok";
    }

    private void close() throws InterruptedException {
        if (zk != null) zk.close();
        zk = null;
    }

    /** utime + stime of this process (all threads, live and ended), in clock ticks. */
    static long cpuTicks() throws Exception {
        String stat = new String(Files.readAllBytes(Paths.get("/proc/self/stat")), StandardCharsets.US_ASCII);
        // Fields after the parenthesised command name; utime and stime are the 14th and 15th.
        String[] f = stat.substring(stat.lastIndexOf(')') + 2).split(" ");
        return Long.parseLong(f[11]) + Long.parseLong(f[12]);
    }

    /** One slice: requests [from, to) with `concurrency` outstanding, each callback sending the next. */
    private static final class Slice implements AsyncCallback.StringCallback, AsyncCallback.DataCallback,
            AsyncCallback.StatCallback, AsyncCallback.VoidCallback {
        private final ZooKeeper zk;
        private final int op;
        private final String prefix;
        private final int from;
        private final int to;
        private final int concurrency;
        private final byte[] data;
        private final long[] start;
        private final long[] latency;
        private final AtomicInteger next;
        private final AtomicInteger active;
        private final CountDownLatch done = new CountDownLatch(1);
        private volatile long end;
        private volatile String failure;

        Slice(ZooKeeper zk, String op, String base, int from, int to, int concurrency, int bytes) {
            this.zk = zk;
            this.op = Arrays.asList("create", "getData", "setData", "delete").indexOf(op);
            if (this.op < 0) throw new IllegalArgumentException("unknown op " + op);
            if (from < 0 || to <= from || concurrency <= 0 || bytes < 0) {
                throw new IllegalArgumentException("bad slice " + from + ".." + to + " at " + concurrency);
            }
            this.prefix = base + "/n";
            this.from = from;
            this.to = to;
            this.concurrency = Math.min(concurrency, to - from);
            this.data = new byte[bytes];
            Arrays.fill(this.data, (byte) 0x61);
            this.start = new long[to - from];
            this.latency = new long[to - from];
            this.next = new AtomicInteger(from);
            this.active = new AtomicInteger(this.concurrency);
        }

        String run() throws Exception {
            long cpu0 = cpuTicks();
            long t0 = System.nanoTime();
            for (int w = 0; w < concurrency; w++) issue();
            if (!done.await(10, TimeUnit.MINUTES)) return "error slice did not finish in 10 minutes";
            long cpu = cpuTicks() - cpu0;
            if (failure != null) return "error " + failure;
            StringBuilder sb = new StringBuilder(32 + 24 * latency.length);
            sb.append("ok ").append(end - t0).append(' ').append(cpu).append(' ').append(t0);
            for (int i = 0; i < latency.length; i++) sb.append(' ').append(latency[i]).append(' ').append(start[i] - t0);
            return sb.toString();
        }

        /** Sends the next request, or retires this worker when none is left. */
        private void issue() {
            int i = next.getAndIncrement();
            if (i >= to) {
                if (active.decrementAndGet() == 0) {
                    end = System.nanoTime();
                    done.countDown();
                }
                return;
            }
            start[i - from] = System.nanoTime();
            String path = prefix + i;
            switch (op) {
                case 0:
                    zk.create(path, data, OPEN, CreateMode.PERSISTENT, (AsyncCallback.StringCallback) this, i);
                    break;
                case 1:
                    zk.getData(path, false, this, i);
                    break;
                case 2:
                    zk.setData(path, data, -1, this, i);
                    break;
                default:
                    zk.delete(path, -1, this, i);
                    break;
            }
        }

        private void completed(int rc, String path, Object ctx) {
            int i = (Integer) ctx;
            latency[i - from] = System.nanoTime() - start[i - from];
            if (rc != 0 && failure == null) failure = "rc " + rc + " on " + path;
            issue();
        }

        @Override
        public void processResult(int rc, String path, Object ctx, String name) {
            completed(rc, path, ctx);
        }

        @Override
        public void processResult(int rc, String path, Object ctx, byte[] data, Stat stat) {
            completed(rc, path, ctx);
        }

        @Override
        public void processResult(int rc, String path, Object ctx, Stat stat) {
            completed(rc, path, ctx);
        }

        @Override
        public void processResult(int rc, String path, Object ctx) {
            completed(rc, path, ctx);
        }
    }
}
