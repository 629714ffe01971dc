"""How well clusters separate words: the paper picks the speech cluster count for about 90 % purity."""
from collections import Counter, defaultdict
from typing import Dict, Iterable, Tuple


def cluster_purity(pairs: Iterable[Tuple[str, int]]) -> Dict:
    """pairs of (word, cluster) per word token -> overall purity (share of tokens in their
    cluster's majority word), each cluster's majority word, and per word: token count, clusters
    used, and the share of its tokens whose cluster it is the majority word of."""
    by_cluster, by_word = defaultdict(Counter), defaultdict(Counter)
    for word, cluster in pairs:
        by_cluster[cluster][word] += 1
        by_word[word][cluster] += 1
    total = sum(sum(c.values()) for c in by_word.values())
    if total == 0:
        raise ValueError("cluster_purity: no tokens")
    majority = {c: words.most_common(1)[0][0] for c, words in by_cluster.items()}
    words = {}
    for word, clusters in sorted(by_word.items(), key=lambda kv: -sum(kv[1].values())):
        n = sum(clusters.values())
        words[word] = {
            "tokens": n,
            "clusters": len(clusters),
            "purity": sum(k for c, k in clusters.items() if majority[c] == word) / n,
        }
    overall = sum(words.most_common(1)[0][1] for words in by_cluster.values()) / total
    return {"purity": overall, "tokens": total, "clusters": len(by_cluster), "majority": majority, "words": words}
