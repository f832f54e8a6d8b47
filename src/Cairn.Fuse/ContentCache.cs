using Cairn.Core;

namespace Cairn.Fuse;

/// <summary>A byte-bounded LRU of verified object contents.</summary>
internal sealed class ContentCache(long capacityBytes)
{
    private readonly Dictionary<Digest, LinkedListNode<(Digest Digest, byte[] Data)>> _map = [];
    private readonly LinkedList<(Digest Digest, byte[] Data)> _order = new();
    private readonly Lock _lock = new();
    private long _bytes;

    public long Bytes
    {
        get
        {
            lock (_lock) return _bytes;
        }
    }

    public bool TryGet(Digest digest, out byte[] data)
    {
        lock (_lock)
        {
            if (_map.TryGetValue(digest, out var node))
            {
                _order.Remove(node);
                _order.AddFirst(node);
                data = node.Value.Data;
                return true;
            }
        }

        data = [];
        return false;
    }

    public void Add(Digest digest, byte[] data)
    {
        if (data.Length > capacityBytes) return;
        lock (_lock)
        {
            if (_map.ContainsKey(digest)) return;
            _map[digest] = _order.AddFirst((digest, data));
            _bytes += data.Length;
            while (_bytes > capacityBytes && _order.Last is { } last)
            {
                _order.RemoveLast();
                _map.Remove(last.Value.Digest);
                _bytes -= last.Value.Data.Length;
            }
        }
    }
}
