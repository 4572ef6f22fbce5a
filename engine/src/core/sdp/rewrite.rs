pub struct SdpRewrite;
pub struct MediaRewrite;
pub struct OriginRewrite;
pub enum IceRewrite {}
pub struct IceCandidate;
