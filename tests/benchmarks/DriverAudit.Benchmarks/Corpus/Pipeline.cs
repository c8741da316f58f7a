using DriverAudit.Scanner.Images;
using DriverAudit.Scanner.Pe;

namespace DriverAudit.Benchmarks.Corpus;

/// <summary>The scanner's per-file path, as InputAnalyzer runs it: open the file, parse the PE, wrap it in lazy facts.</summary>
public static class Pipeline
{
    /// <summary>
    /// Runs <paramref name="use"/> on fresh facts of every image (nothing cached across calls) and sums what it
    /// returns, so the work cannot be optimised away.
    /// </summary>
    internal static long ForEach(ImageSet images, Func<PeFacts, long> use)
    {
        long sum = 0;
        foreach (var path in images.Paths)
        {
            using var source = FileImageSource.Open(path);
            var image = PeImage.TryOpen(source).Image ?? throw new InvalidDataException(path + " no longer opens as a PE");
            sum += use(new PeFacts(image));
        }
        return sum;
    }

    /// <summary>Facts kept open with their sources, for benchmarks that measure work over facts already extracted.</summary>
    public sealed class OpenImages : IDisposable
    {
        private readonly List<IImageSource> _sources = [];

        public OpenImages(ImageSet images)
        {
            foreach (var path in images.Paths)
            {
                var source = FileImageSource.Open(path);
                _sources.Add(source);
                Facts.Add(new PeFacts(PeImage.TryOpen(source).Image ?? throw new InvalidDataException(path + " no longer opens as a PE")));
            }
        }

        internal List<PeFacts> Facts { get; } = [];

        public void Dispose()
        {
            foreach (var s in _sources) s.Dispose();
        }
    }
}
