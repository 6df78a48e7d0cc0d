package dev.filesearch;

import java.io.IOException;
import java.io.PrintStream;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.Paths;
import java.util.ArrayList;
import java.util.Collection;
import java.util.Collections;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.TimeUnit;
import java.util.concurrent.atomic.AtomicBoolean;

import org.apache.logging.log4j.LogManager;
import org.apache.logging.log4j.core.LoggerContext;
import org.apache.logging.log4j.core.config.Configurator;
import org.opensearch.cluster.service.ClusterService;
import org.opensearch.common.logging.LogConfigurator;
import org.opensearch.common.settings.Settings;
import org.opensearch.env.Environment;
import org.opensearch.node.InternalSettingsPreparer;
import org.opensearch.node.Node;
import org.opensearch.plugins.Plugin;

/**
 * Starts a real single-node OpenSearch 2.19 cluster from jars on the classpath (no distribution).
 *
 * <p>Arguments (each may instead be given as a system property {@code -Dopensearch.launcher.<name>}):
 *
 * <pre>
 *   --home DIR             node home; config/, data/, logs/ live below it (required)
 *   --http-port N          HTTP port (default 9200)
 *   --transport-port N     transport port (default 0 = any free port)
 *   --cluster-name NAME    default "filesearch-dev"
 *   --node-name NAME       default "filesearch-node"
 *   --parent-pid PID       exit (cleanly) when that process dies, so no JVM outlives its caller
 * </pre>
 *
 * <p>Prints exactly one line {@code OPENSEARCH_READY http://127.0.0.1:<port>} to stdout once the
 * node has started. Stops cleanly on SIGTERM/SIGINT. Exit codes: 0 normal, 1 start failure,
 * 2 bad arguments, 3 a required plugin class is missing from the classpath.
 */
public final class OpenSearchLauncher {

    /** Plugins loaded into the node. All are required: a missing one is a build problem. */
    private static final String[] PLUGIN_CLASSES = {
        // HTTP + transport; without it the node has no HTTP endpoint at all.
        "org.opensearch.transport.Netty4Plugin",
        // cjk analyzer, path_hierarchy tokenizer, ... (declares lang-painless as extended plugin).
        "org.opensearch.analysis.common.CommonAnalysisPlugin",
        "org.opensearch.painless.PainlessPlugin",
        // _reindex / _update_by_query / _delete_by_query.
        "org.opensearch.index.reindex.ReindexPlugin",
        // scaled_float, rank_feature, search_as_you_type, token_count.
        "org.opensearch.index.mapper.MapperExtrasPlugin",
    };

    static final String READY_MARKER = "OPENSEARCH_READY";

    private OpenSearchLauncher() {}

    /** Node subclass that exposes the protected constructor taking classpath plugins. */
    static final class EmbeddedNode extends Node {
        EmbeddedNode(Environment environment, Collection<Class<? extends Plugin>> plugins) {
            super(environment, plugins, true);
        }

        @Override
        protected void configureNodeAndClusterIdStateListener(ClusterService clusterService) {
            // The default registers a listener that feeds node/cluster ids into the log pattern
            // converters; it is meant for the Bootstrap path. Not needed here.
        }
    }

    public static void main(String[] args) {
        // Keep handles on the real console before LogConfigurator redirects System.out/err.
        final PrintStream stdout = System.out;
        final PrintStream stderr = System.err;

        // Same as the distribution's jvm.options: we shut log4j down ourselves after the node.
        System.setProperty("log4j.shutdownHookEnabled", "false");
        System.setProperty("log4j2.disable.jmx", "true");

        final Map<String, String> opts;
        try {
            opts = parseArgs(args);
        } catch (IllegalArgumentException e) {
            stderr.println("OpenSearchLauncher: " + e.getMessage());
            stderr.println(
                "usage: OpenSearchLauncher --home DIR [--http-port N] [--transport-port N]"
                    + " [--cluster-name NAME] [--node-name NAME] [--parent-pid PID]");
            System.exit(2);
            return;
        }

        final List<Class<? extends Plugin>> plugins;
        try {
            plugins = loadPlugins();
        } catch (IllegalStateException e) {
            stderr.println("OpenSearchLauncher: FATAL: " + e.getMessage());
            System.exit(3);
            return;
        }

        LogConfigurator.registerErrorListener();

        final Path home = Paths.get(opts.get("home")).toAbsolutePath().normalize();
        final String httpPort = opts.get("http-port");
        final Node node;
        try {
            final Path config = home.resolve("config");
            for (String dir : new String[] {"config", "data", "logs", "plugins", "modules"}) {
                Files.createDirectories(home.resolve(dir));
            }
            writeDefaultLoggingConfig(config);

            final Settings settings = Settings.builder()
                .put("path.home", home.toString())
                .put("path.data", home.resolve("data").toString())
                .put("path.logs", home.resolve("logs").toString())
                .put("cluster.name", opts.get("cluster-name"))
                .put("node.name", opts.get("node-name"))
                .putList("node.roles", "cluster_manager", "data")
                .put("network.host", "127.0.0.1")
                .put("http.port", httpPort)
                .put("transport.port", opts.get("transport-port"))
                .put("discovery.type", "single-node")
                .put("cluster.routing.allocation.disk.threshold_enabled", false)
                .build();
            final Environment environment = InternalSettingsPreparer.prepareEnvironment(
                settings, Collections.emptyMap(), config, () -> opts.get("node-name"));
            LogConfigurator.setNodeName(opts.get("node-name"));
            LogConfigurator.configure(environment);

            node = new EmbeddedNode(environment, plugins);
        } catch (Throwable t) {
            stderr.println("OpenSearchLauncher: failed to create node in " + home);
            t.printStackTrace(stderr);
            shutdownLogging();
            System.exit(1);
            return;
        }

        final CountDownLatch stopped = new CountDownLatch(1);
        final AtomicBoolean closing = new AtomicBoolean();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            if (closing.compareAndSet(false, true)) {
                closeNode(node, stderr);
                shutdownLogging();
            }
            stopped.countDown();
        }, "opensearch-launcher-shutdown"));

        if (opts.containsKey("parent-pid")) {
            exitWithParent(Long.parseLong(opts.get("parent-pid")), stderr);
        }

        try {
            node.start();
        } catch (Throwable t) {
            stderr.println("OpenSearchLauncher: failed to start node in " + home);
            t.printStackTrace(stderr);
            // The shutdown hook closes the node.
            System.exit(1);
            return;
        }

        stdout.println(READY_MARKER + " http://127.0.0.1:" + httpPort);
        stdout.flush();

        // OpenSearch's thread pools use daemon threads: keep the JVM alive until shutdown.
        try {
            stopped.await();
        } catch (InterruptedException e) {
            Thread.currentThread().interrupt();
        }
    }

    /** Exits (running the shutdown hook, i.e. closing the node) once process {@code pid} is gone. */
    private static void exitWithParent(long pid, PrintStream stderr) {
        final Runnable exit = () -> {
            stderr.println("OpenSearchLauncher: parent process " + pid + " is gone, shutting down");
            System.exit(0);
        };
        ProcessHandle.of(pid).ifPresentOrElse(parent -> parent.onExit().thenRun(exit), exit);
    }

    private static void closeNode(Node node, PrintStream stderr) {
        try {
            node.close();
            if (!node.awaitClose(30, TimeUnit.SECONDS)) {
                stderr.println("OpenSearchLauncher: node did not close within 30s");
            }
        } catch (Throwable t) {
            stderr.println("OpenSearchLauncher: error while closing node");
            t.printStackTrace(stderr);
        }
    }

    private static void shutdownLogging() {
        try {
            Configurator.shutdown((LoggerContext) LogManager.getContext(false));
        } catch (Throwable ignored) {
            // best effort
        }
    }

    @SuppressWarnings("unchecked")
    static List<Class<? extends Plugin>> loadPlugins() {
        final List<Class<? extends Plugin>> plugins = new ArrayList<>();
        final List<String> missing = new ArrayList<>();
        for (String name : PLUGIN_CLASSES) {
            try {
                final Class<?> cls = Class.forName(name, false, OpenSearchLauncher.class.getClassLoader());
                if (!Plugin.class.isAssignableFrom(cls)) {
                    throw new IllegalStateException(name + " is not an org.opensearch.plugins.Plugin");
                }
                plugins.add((Class<? extends Plugin>) cls);
            } catch (ClassNotFoundException | LinkageError e) {
                missing.add(name + " (" + e + ")");
            }
        }
        if (!missing.isEmpty()) {
            throw new IllegalStateException(
                "required OpenSearch plugin classes are missing from the classpath: " + missing
                    + ". Rebuild with: mvn -f devstack/opensearch-node/pom.xml package");
        }
        return plugins;
    }

    static Map<String, String> parseArgs(String[] args) {
        final Map<String, String> opts = new LinkedHashMap<>();
        final String[] names = {
            "home", "http-port", "transport-port", "cluster-name", "node-name", "parent-pid"};
        for (String name : names) {
            final String value = System.getProperty("opensearch.launcher." + name);
            if (value != null) {
                opts.put(name, value);
            }
        }
        for (int i = 0; i < args.length; i++) {
            String arg = args[i];
            if (!arg.startsWith("--")) {
                throw new IllegalArgumentException("unexpected argument: " + arg);
            }
            arg = arg.substring(2);
            String value;
            final int eq = arg.indexOf('=');
            if (eq >= 0) {
                value = arg.substring(eq + 1);
                arg = arg.substring(0, eq);
            } else if (i + 1 < args.length) {
                value = args[++i];
            } else {
                throw new IllegalArgumentException("missing value for --" + arg);
            }
            if (!List.of(names).contains(arg)) {
                throw new IllegalArgumentException("unknown option: --" + arg);
            }
            opts.put(arg, value);
        }
        if (!opts.containsKey("home")) {
            throw new IllegalArgumentException("--home is required");
        }
        opts.putIfAbsent("http-port", "9200");
        opts.putIfAbsent("transport-port", "0");
        opts.putIfAbsent("cluster-name", "filesearch-dev");
        opts.putIfAbsent("node-name", "filesearch-node");
        if (opts.containsKey("parent-pid")) {
            try {
                Long.parseLong(opts.get("parent-pid"));
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException(
                    "--parent-pid must be a process id: " + opts.get("parent-pid"));
            }
        }
        for (String port : new String[] {"http-port", "transport-port"}) {
            try {
                final int p = Integer.parseInt(opts.get(port));
                if (p < 0 || p > 65535) {
                    throw new NumberFormatException();
                }
            } catch (NumberFormatException e) {
                throw new IllegalArgumentException("--" + port + " must be a port number: " + opts.get(port));
            }
        }
        return opts;
    }

    /** Writes config/log4j2.properties (console + file) unless the user already provided one. */
    static void writeDefaultLoggingConfig(Path configDir) throws IOException {
        final Path file = configDir.resolve("log4j2.properties");
        if (Files.exists(file)) {
            return;
        }
        final String text = String.join("\n",
            "# Written by dev.filesearch.OpenSearchLauncher; edit freely, it is not overwritten.",
            "status = error",
            "",
            "appender.console.type = Console",
            "appender.console.name = console",
            "appender.console.target = SYSTEM_ERR",
            "appender.console.layout.type = PatternLayout",
            "appender.console.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n",
            "",
            "appender.file.type = File",
            "appender.file.name = file",
            "appender.file.fileName = ${sys:opensearch.logs.base_path}${sys:file.separator}"
                + "${sys:opensearch.logs.cluster_name}.log",
            "appender.file.layout.type = PatternLayout",
            "appender.file.layout.pattern = [%d{ISO8601}][%-5p][%-25c{1.}] [%node_name]%marker %m%n",
            "",
            "rootLogger.level = info",
            "rootLogger.appenderRef.console.ref = console",
            "rootLogger.appenderRef.file.ref = file",
            "",
            "# Quieten the deprecation logger (it would otherwise need its own appender).",
            "logger.deprecation.name = org.opensearch.deprecation",
            "logger.deprecation.level = error",
            "");
        Files.writeString(file, text, StandardCharsets.UTF_8);
    }
}
