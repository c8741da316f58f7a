using System.Text.RegularExpressions;
using Xunit;
using YamlDotNet.RepresentationModel;

namespace DriverAudit.Scanner.Tests.Fleet;

/// <summary>The shipped sweep examples parse, and their shard arithmetic covers 1..N exactly once.</summary>
public sealed class ExamplesTests
{
    private static string Example(string name) => Path.Combine(RepoPaths.Root, "examples", "fleet", name);

    private static YamlMappingNode Load(string name)
    {
        var stream = new YamlStream();
        stream.Load(new StringReader(File.ReadAllText(Example(name))));
        return (YamlMappingNode)stream.Documents.Single().RootNode;
    }

    private static YamlNode At(YamlNode node, params string[] path) =>
        path.Aggregate(node, (n, key) => ((YamlMappingNode)n).Children[new YamlScalarNode(key)]);

    [Fact]
    public void Github_matrix_lists_every_shard_of_the_count_it_passes()
    {
        var root = Load("github-actions-matrix.yml");
        var shards = ((YamlSequenceNode)At(root, "jobs", "scan", "strategy", "matrix", "shard")).Children.Select(c => int.Parse(c.ToString())).ToList();
        var text = File.ReadAllText(Example("github-actions-matrix.yml"));
        var counts = Regex.Matches(text, @"--shard \$\{\{ matrix\.shard \}\}/(\d+)").Select(m => int.Parse(m.Groups[1].Value)).Distinct().ToList();
        var n = Assert.Single(counts);
        Assert.Equal(Enumerable.Range(1, n), shards);
        Assert.Contains("driveraudit merge", text);
        Assert.Equal("scan", At(root, "jobs", "merge", "needs").ToString());
    }

    [Fact]
    public void Kubernetes_indexed_job_maps_the_0_based_index_onto_1_based_shards()
    {
        var root = Load("kubernetes-indexed-job.yaml");
        Assert.Equal("Indexed", At(root, "spec", "completionMode").ToString());
        var completions = int.Parse(At(root, "spec", "completions").ToString());
        var text = File.ReadAllText(Example("kubernetes-indexed-job.yaml"));
        var m = Regex.Match(text, @"--shard \$\(\(JOB_COMPLETION_INDEX \+ 1\)\)/(\d+)");
        Assert.True(m.Success);
        Assert.Equal(completions, int.Parse(m.Groups[1].Value));
    }

    [Fact]
    public void Velociraptor_artifact_runs_inventory_and_scan_with_the_client_hostname()
    {
        var root = Load("velociraptor-artifact.yaml");
        Assert.Equal("CLIENT", At(root, "type").ToString());
        var sources = ((YamlSequenceNode)At(root, "sources")).Children.Select(s => At(s, "query").ToString()).ToList();
        Assert.Contains(sources, q => q.Contains("\"inventory\", \"--host\", host[0].Hostname"));
        Assert.Contains(sources, q => q.Contains("\"scan\", \"--host\", host[0].Hostname"));
        Assert.Equal("DriverAudit", At(((YamlSequenceNode)At(root, "tools")).Children[0], "name").ToString());
    }
}
