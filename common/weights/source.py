"""What a reference's weight file is: where it is published, how it is read, what input its
weights expect. Each network's weights.py holds one."""
import collections

# reference: who trained it; file_name, published_at: the file and where the reference
# publishes it; top1: the reference's reported ImageNet top-1; kind: 'pth' | 'tf_checkpoint';
# preprocessing: the zoo preprocessing (common/preprocessing.py) the weights expect;
# background_class: class 0 of its classifier is a background class (1001 logits).
Source = collections.namedtuple('Source', ['reference', 'file_name', 'published_at', 'top1',
                                           'kind', 'preprocessing', 'background_class'])
